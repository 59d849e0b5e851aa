"""Sample requests shared by the in-process tests."""

CUSTOMER = {
    "domain": "acme.example",
    "alternate_email": "it@acme-corp.example.net",
    "postal_address": {
        "contact_name": "Ada",
        "organization_name": "Acme",
        "postal_code": "94043",
        "country_code": "US",
    },
}
