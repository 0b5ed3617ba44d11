"""`python -m js7certctl`."""

from js7certctl.cli import main

if __name__ == "__main__":
    main()
