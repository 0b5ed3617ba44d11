"""js7certctl: declarative, GitOps management of JS7 JobScheduler encryption certificates."""

__version__ = "0.1.0"
