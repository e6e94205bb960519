"""All models, imported here so the metadata is complete."""

from shared.models.accounts import Account, AccountToken, RecoveryCode, UserSession
from shared.models.base import Base
from shared.models.clients import Client, ClientNameToken
from shared.models.keys import AppMeta, DataKey
from shared.models.passkeys import PasskeyChallenge, PasskeyCredential
from shared.models.staff import StaffMember

__all__ = [
    "Account",
    "AccountToken",
    "AppMeta",
    "Base",
    "Client",
    "ClientNameToken",
    "DataKey",
    "PasskeyChallenge",
    "PasskeyCredential",
    "RecoveryCode",
    "StaffMember",
    "UserSession",
]
