"""``python -m ftaudit COMMAND ARGS...``: the ``ftaudit`` console script."""

from ftaudit.cli import main

if __name__ == "__main__":
    main()
