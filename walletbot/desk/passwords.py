"""Prints the scrypt hash of a password for the agents file.

    .venv/bin/python -m walletbot.desk.passwords       # asks for the password
"""

import getpass
import sys

from walletbot.desk.auth import hash_password


def main() -> int:
    password = getpass.getpass("新密码 / new password: ")
    if password != getpass.getpass("再输入一次 / again: "):
        print("passwords differ", file=sys.stderr)
        return 1
    print(hash_password(password))
    return 0


if __name__ == "__main__":
    sys.exit(main())
