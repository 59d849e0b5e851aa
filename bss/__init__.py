"""Google Workspace reseller provisioning engine."""
