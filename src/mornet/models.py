"""Every context's tables, imported in one place so migrations see the whole schema."""

from __future__ import annotations


def import_all_models() -> None:
    from mornet import outbox  # noqa: F401  (the event outbox's tables)
    from mornet.analytics import models as analytics  # noqa: F401
    from mornet.bank import models as bank  # noqa: F401
    from mornet.chain import models as chain  # noqa: F401
    from mornet.cost import models as cost  # noqa: F401
    from mornet.households import models as households  # noqa: F401
    from mornet.identity import models as identity  # noqa: F401
    from mornet.market import models as market  # noqa: F401
    from mornet.tariffs import models as tariffs  # noqa: F401
    from mornet.telemetry import models as telemetry  # noqa: F401
    from mornet.tokens import models as tokens  # noqa: F401
    from mornet.treasury import models as treasury  # noqa: F401
    from mornet.wallets import models as wallets  # noqa: F401
