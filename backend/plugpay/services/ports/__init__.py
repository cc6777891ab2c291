"""The Protocols that adapters implement, and the plain data that crosses them.

One module per feature; everything is re-exported here.
"""

from __future__ import annotations

from plugpay.services.ports.chargers import (
    BootInfo,
    ChargerLink,
    ChargerStore,
    ChargerView,
    ConnectorView,
    LoggedMessage,
    MessageLog,
    NewCharger,
    PasswordHasher,
)
from plugpay.services.ports.live import (
    LiveBus,
    LiveSubscription,
)
from plugpay.services.ports.notify import (
    PushSender,
    PushSubscription,
)
from plugpay.services.ports.payments import (
    DemoCardForm,
    HoldRequest,
    InvalidWebhook,
    PaymentDeclined,
    PaymentGateway,
    PaymentState,
    PaymentUnavailable,
    WebhookEvent,
)
from plugpay.services.ports.sessions import (
    ConnectorTaken,
    PaymentJob,
    Reading,
    SessionRecord,
    SessionStore,
    TransactionInfo,
)
from plugpay.services.ports.tariffs import (
    ConnectorPlace,
    StoredTariff,
    TariffStore,
)
from plugpay.services.ports.transactions import (
    EventInput,
    FlaggedSample,
    StartInput,
    StopInput,
    TransactionRef,
    TransactionStore,
)

__all__ = [
    "BootInfo",
    "ChargerLink",
    "ChargerStore",
    "ChargerView",
    "ConnectorPlace",
    "ConnectorTaken",
    "ConnectorView",
    "DemoCardForm",
    "EventInput",
    "FlaggedSample",
    "HoldRequest",
    "InvalidWebhook",
    "LiveBus",
    "LiveSubscription",
    "LoggedMessage",
    "MessageLog",
    "NewCharger",
    "PasswordHasher",
    "PaymentDeclined",
    "PaymentGateway",
    "PaymentJob",
    "PaymentState",
    "PaymentUnavailable",
    "PushSender",
    "PushSubscription",
    "Reading",
    "SessionRecord",
    "SessionStore",
    "StartInput",
    "StopInput",
    "StoredTariff",
    "TariffStore",
    "TransactionInfo",
    "TransactionRef",
    "TransactionStore",
    "WebhookEvent",
]
