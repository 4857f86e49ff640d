"""Allow ``python -m medgan`` (and ``torchrun -m medgan``)."""

from medgan.cli.main import main

if __name__ == "__main__":
    main()
