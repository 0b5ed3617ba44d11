"""A JOC Cockpit emulator for tests: the encryption-certificate API over real HTTP(S).

See :mod:`tests.joc_emulator.server` for the behaviour and the fault-injection API, and
:mod:`tests.joc_emulator.fixture` for the pytest fixture and the subprocess helper.
"""

from tests.joc_emulator.server import JocEmulator
from tests.joc_emulator.state import (
    ALL_PERMISSIONS,
    PERM_CERTIFICATES_MANAGE,
    PERM_CERTIFICATES_VIEW,
    PERM_INVENTORY_VIEW,
    VIEW_PERMISSIONS,
    Account,
    Call,
    EmulatorConfig,
    EmulatorState,
    Fault,
    FaultKind,
    SecurityLevel,
)

__all__ = [
    "ALL_PERMISSIONS",
    "PERM_CERTIFICATES_MANAGE",
    "PERM_CERTIFICATES_VIEW",
    "PERM_INVENTORY_VIEW",
    "VIEW_PERMISSIONS",
    "Account",
    "Call",
    "EmulatorConfig",
    "EmulatorState",
    "Fault",
    "FaultKind",
    "JocEmulator",
    "SecurityLevel",
]
