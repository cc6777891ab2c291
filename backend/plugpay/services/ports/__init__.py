"""The Protocols that adapters implement, and the plain data that crosses them.

One module per feature; everything is re-exported here.
"""

from __future__ import annotations

from plugpay.services.ports.accounts import (
    Account,
    AccountRepository,
    AccountStore,
    IdentityProvider,
    ProviderUnavailable,
    SignInAttempt,
    SignInRefused,
    VerifiedIdentity,
)
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
from plugpay.services.ports.jobs import (
    Job,
    JobKind,
    JobQueue,
    JobRepository,
    JobState,
    NewJob,
)
from plugpay.services.ports.ledger import (
    LedgerQueries,
    PaymentRecord,
    PaymentRepository,
    RefundRecord,
)
from plugpay.services.ports.limits import (
    Decision,
    RateLimiter,
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
    AmountNotRepresentable,
    ChargeRefundedDetails,
    DemoCardForm,
    DemoSetupForm,
    DisputeDetails,
    EventDetails,
    HoldRequest,
    IntentDetails,
    InvalidWebhook,
    PaymentDeclined,
    PaymentGateway,
    PaymentState,
    PaymentUnavailable,
    RefundDetails,
    RefundState,
    SavedMethod,
    SetupDetails,
    SetupState,
    WebhookEvent,
)
from plugpay.services.ports.sessions import (
    ConnectorTaken,
    Reading,
    SessionRecord,
    SessionRepository,
    SessionStore,
    StaleSession,
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
from plugpay.services.ports.uow import (
    UnitOfWork,
    UnitOfWorkFactory,
)
from plugpay.services.ports.webhooks import (
    StoredEvent,
    WebhookRepository,
)

__all__ = [
    "Account",
    "AccountRepository",
    "AccountStore",
    "AmountNotRepresentable",
    "BootInfo",
    "ChargeRefundedDetails",
    "ChargerLink",
    "ChargerStore",
    "ChargerView",
    "ConnectorPlace",
    "ConnectorTaken",
    "ConnectorView",
    "Decision",
    "DemoCardForm",
    "DemoSetupForm",
    "DisputeDetails",
    "EventDetails",
    "EventInput",
    "FlaggedSample",
    "HoldRequest",
    "IdentityProvider",
    "IntentDetails",
    "InvalidWebhook",
    "Job",
    "JobKind",
    "JobQueue",
    "JobRepository",
    "JobState",
    "LedgerQueries",
    "LiveBus",
    "LiveSubscription",
    "LoggedMessage",
    "MessageLog",
    "NewCharger",
    "NewJob",
    "PasswordHasher",
    "PaymentDeclined",
    "PaymentGateway",
    "PaymentRecord",
    "PaymentRepository",
    "PaymentState",
    "PaymentUnavailable",
    "ProviderUnavailable",
    "PushSender",
    "PushSubscription",
    "RateLimiter",
    "Reading",
    "RefundDetails",
    "RefundRecord",
    "RefundState",
    "SavedMethod",
    "SessionRecord",
    "SessionRepository",
    "SessionStore",
    "SetupDetails",
    "SetupState",
    "SignInAttempt",
    "SignInRefused",
    "StaleSession",
    "StartInput",
    "StopInput",
    "StoredEvent",
    "StoredTariff",
    "TariffStore",
    "TransactionInfo",
    "TransactionRef",
    "TransactionStore",
    "UnitOfWork",
    "UnitOfWorkFactory",
    "VerifiedIdentity",
    "WebhookEvent",
    "WebhookRepository",
]
