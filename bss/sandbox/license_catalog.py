"""The License Manager's products and SKUs: every one it accepts, resold here or not.

Google's "Google Product and SKU IDs" page for the Enterprise License Manager API lists them;
the ids it does not show in full (Voice, Archived User, AppSheet, Drive storage, ...) follow the
table GAM keeps for the same API (``gamlib/glskus.py``). The Reseller catalog
(``bss.sandbox.catalog``) sells only some of them; the License Manager knows them all.
"""

from __future__ import annotations

from bss.sandbox.errors import bad_request

WORKSPACE = "Google-Apps"

#: productId -> productName
PRODUCTS: dict[str, str] = {
    WORKSPACE: "Google Workspace",
    "101001": "Cloud Identity",
    "101006": "Google Workspace Essentials",
    "101005": "Cloud Identity Premium",
    "101031": "Google Workspace for Education",
    "101033": "Google Voice",
    "101034": "Google Workspace Archived User",
    "101035": "Cloud Search",
    "101036": "Google Meet Global Dialing",
    "101037": "Google Workspace for Education",
    "101038": "AppSheet",
    "101039": "Assured Controls",
    "101040": "Chrome Enterprise",
    "101043": "Google Workspace Additional Storage",
    "101047": "Gemini",
    "101049": "Education Endpoint Management",
    "101050": "Colab",
    "101068": "Gemini Business",
    "Google-Chrome-Device-Management": "Google Chrome Device Management",
    "Google-Drive-storage": "Google Drive Storage",
    "Google-Vault": "Google Vault",
}

_DRIVE = ("20GB", "50GB", "200GB", "400GB", "1TB", "2TB", "4TB", "8TB", "16TB")

#: skuId -> (productId, skuName)
SKUS: dict[str, tuple[str, str]] = {
    # Google Workspace
    "1010020027": (WORKSPACE, "Google Workspace Business Starter"),
    "1010020028": (WORKSPACE, "Google Workspace Business Standard"),
    "1010020025": (WORKSPACE, "Google Workspace Business Plus"),
    "1010060003": (WORKSPACE, "Google Workspace Enterprise Essentials"),
    "1010020029": (WORKSPACE, "Google Workspace Enterprise Starter"),
    "1010020026": (WORKSPACE, "Google Workspace Enterprise Standard"),
    "1010020020": (WORKSPACE, "Google Workspace Enterprise Plus"),
    "1010060001": (WORKSPACE, "Google Workspace Essentials"),
    "1010060005": (WORKSPACE, "Google Workspace Enterprise Essentials Plus"),
    "1010020030": (WORKSPACE, "Google Workspace Frontline Starter"),
    "1010020031": (WORKSPACE, "Google Workspace Frontline Standard"),
    "1010020034": (WORKSPACE, "Google Workspace Frontline Plus"),
    "1010020035": (WORKSPACE, "Google Workspace Business Continuity"),
    "1010020036": (WORKSPACE, "Google Workspace Business Continuity Plus"),
    # G Suite and legacy
    "Google-Apps": (WORKSPACE, "G Suite Legacy"),
    "Google-Apps-Unlimited": (WORKSPACE, "G Suite Business"),
    "Google-Apps-For-Business": (WORKSPACE, "G Suite Basic"),
    "Google-Apps-Lite": (WORKSPACE, "G Suite Lite"),
    "Google-Apps-For-Postini": (WORKSPACE, "Google Apps Message Security"),
    "Google-Apps-For-Government": (WORKSPACE, "Google Workspace Government"),
    # Education
    "Google-Apps-For-Education": (WORKSPACE, "Google Workspace for Education - Fundamentals"),
    "1010070001": (WORKSPACE, "Google Workspace for Education Fundamentals"),
    "1010070004": (WORKSPACE, "Google Workspace for Education Gmail Only"),
    "1010310002": ("101031", "Google Workspace for Education Plus - Legacy"),
    "1010310003": ("101031", "Google Workspace for Education Plus - Legacy (Student)"),
    "1010310005": ("101031", "Google Workspace for Education Standard"),
    "1010310006": ("101031", "Google Workspace for Education Standard (Staff)"),
    "1010310007": ("101031", "Google Workspace for Education Standard (Extra Student)"),
    "1010310008": ("101031", "Google Workspace for Education Plus"),
    "1010310009": ("101031", "Google Workspace for Education Plus (Staff)"),
    "1010310010": ("101031", "Google Workspace for Education Plus (Extra Student)"),
    "1010370001": (
        "101037",
        "Google Workspace for Education: Teaching and Learning Upgrade",
    ),
    "1010490001": ("101049", "Endpoint Education Upgrade"),
    # Archived users
    "1010340001": ("101034", "Google Workspace Enterprise Plus - Archived User"),
    "1010340002": ("101034", "Google Workspace Business - Archived User"),
    "1010340003": ("101034", "Google Workspace Business Plus - Archived User"),
    "1010340004": ("101034", "Google Workspace Enterprise Standard - Archived User"),
    "1010340005": ("101034", "Google Workspace Business Starter - Archived User"),
    "1010340006": ("101034", "Google Workspace Business Standard - Archived User"),
    "1010340007": ("101034", "Google Workspace for Education Fundamentals - Archived User"),
    # Gemini
    "1010470001": ("101047", "Gemini Enterprise"),
    "1010470002": ("101047", "Gemini Labs"),
    "1010470003": ("101047", "Gemini Business"),
    "1010470004": ("101047", "Gemini Education"),
    "1010470005": ("101047", "Gemini Education Premium"),
    "1010470006": ("101047", "Gemini Security"),
    "1010470007": ("101047", "Gemini Meet"),
    "1010470008": ("101047", "Google AI Ultra for Business"),
    "1010470009": ("101047", "AI Expanded Access"),
    "1010680001": ("101068", "Gemini Enterprise Business Edition"),
    # Identity, Voice and the rest
    "1010010001": ("101001", "Cloud Identity Free"),
    "1010050001": ("101005", "Cloud Identity Premium"),
    "1010330003": ("101033", "Google Voice Starter"),
    "1010330004": ("101033", "Google Voice Standard"),
    "1010330002": ("101033", "Google Voice Premier"),
    "1010350001": ("101035", "Cloud Search"),
    "1010360001": ("101036", "Google Meet Global Dialing"),
    "1010380001": ("101038", "AppSheet Core"),
    "1010380002": ("101038", "AppSheet Enterprise Standard"),
    "1010380003": ("101038", "AppSheet Enterprise Plus"),
    "1010390001": ("101039", "Assured Controls"),
    "1010390002": ("101039", "Assured Controls Plus"),
    "1010400001": ("101040", "Chrome Enterprise Premium"),
    # GAM 7.48.31 added 100GB and 1TB and renamed 1010430001 to the 10TB one.
    "1010430001": ("101043", "Google Workspace Additional Storage 10TB"),
    "1010430002": ("101043", "Google Workspace Additional Storage 100GB"),
    "1010430003": ("101043", "Google Workspace Additional Storage 1TB"),
    "1010500001": ("101050", "Colab Pro"),
    "1010500002": ("101050", "Colab Pro+"),
    "Google-Chrome-Device-Management": (
        "Google-Chrome-Device-Management",
        "Google Chrome Device Management",
    ),
    **{
        f"Google-Drive-storage-{size}": ("Google-Drive-storage", f"Google Drive Storage {size}")
        for size in _DRIVE
    },
    "Google-Vault": ("Google-Vault", "Google Vault"),
    "Google-Vault-Former-Employee": ("Google-Vault", "Google Vault - Former Employee"),
}

#: SKUs the License Manager also knows under a second productId: (productId, skuId) -> the
#: productId of the published list, under which the license is kept. Google's page lists
#: Essentials under Google-Apps; GAM has asked for it under 101006 since 2020 ("Fix listing of
#: G Suite Essentials SKU", GAM commit 7959d35f), so Google answers it there too.
ALIASES: dict[tuple[str, str], str] = {("101006", "1010060001"): WORKSPACE}


def product(product_id: str) -> str:
    """The product's name, or Google's 400 for a productId the License Manager does not know."""
    if product_id not in PRODUCTS:
        raise bad_request(f"Invalid ProductId: {product_id}")
    return PRODUCTS[product_id]


def sku(product_id: str, sku_id: str) -> str:
    """The SKU's name; 400 for an unknown product, or a SKU that product does not have."""
    product(product_id)
    if SKUS.get(sku_id, ("",))[0] != canonical(product_id, sku_id):
        raise bad_request(f"Invalid SkuId: {sku_id}")
    return SKUS[sku_id][1]


def canonical(product_id: str, sku_id: str) -> str:
    """The productId a license for this SKU is kept under (the alias's published one)."""
    return ALIASES.get((product_id, sku_id), product_id)


def holds(product_id: str, assignment: dict) -> bool:
    """Whether a listing of ``product_id`` shows this license assignment."""
    return canonical(product_id, assignment["skuId"]) == assignment["productId"]


def skus_of(product_id: str) -> list[str]:
    """The SKU ids of a product, in the published order (then those it knows by alias)."""
    own = [s for s, (p, _) in SKUS.items() if p == product_id]
    return own + [s for p, s in ALIASES if p == product_id]
