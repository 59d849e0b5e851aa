"""The `bss` command and what it runs beside the service: `bss demo` (the whole stack on one
machine, seeded), `bss bench` (throughput and latency of a throw-away stack), process supervision
for both, and re-encrypting every secret under the newest key. Nothing in the service imports it."""

from bss.tools.cli import main
from bss.tools.key_rotation import encrypted_columns
from bss.tools.processes import Supervisor, free_port, wait_http
from bss.tools.sandbox_tenant import SandboxTenant, sandbox_tenant

__all__ = [
    "SandboxTenant",
    "Supervisor",
    "encrypted_columns",
    "free_port",
    "main",
    "sandbox_tenant",
    "wait_http",
]
