"""On-call: rotas with overrides (rota), the writes on them and the after-hours assignment (services), and
big-sale windows (big_sale)."""

from tickets.oncall.rota import (
    OnCall,
    Override,
    Rota,
    company_zone,
    on_call,
    responsible_rota,
    rota_for_team,
    rota_plain,
)

__all__ = [
    "OnCall",
    "Override",
    "Rota",
    "company_zone",
    "on_call",
    "responsible_rota",
    "rota_for_team",
    "rota_plain",
]
