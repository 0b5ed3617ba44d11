"""Live keystore backends behind one protocol (:mod:`js7certctl.keystore.base`)."""
