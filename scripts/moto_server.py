"""moto's server for the tests, with two fixes to its DynamoDB.

1. Atomic item writes. moto's server is threaded and its conditional writes are read, check,
   write in Python: two concurrent transactions with `n < :max` can both pass the check (the
   store contract's `concurrent_increments_never_exceed_max` saw 6 of a maximum of 5). DynamoDB
   applies each write (and each transaction) atomically; here DynamoDB's writes run one at a
   time under one lock. Reads are not locked (a read waiting behind a transaction's table copy
   made the crash suite's callbacks time out), nor are other services (SQS long polls).
2. The transaction backup, below.

moto 5.2.5 backs up a table before a TransactWriteItems (to roll back when a condition fails) by
deep-copying the whole table once per item of the transaction, each copy replacing the last.
Every copy is taken before anything is written, so one copy per table is the same backup. With
the outbox (an event item in every state change's transaction) that waste made the crash suite's
moto the bottleneck: each transaction cost (items in it) x (items in the table). This starts moto's
own server with the backup taken once per table; nothing else changes. If moto's code no longer
has the line this replaces, moto runs as shipped and says so.
"""

import functools
import inspect
import os
import sys
import textwrap
import threading

from moto.dynamodb.models import DynamoDBBackend
from moto.server import main

OLD = "if table_name and table_name in self.tables:"
NEW = "if table_name and table_name in self.tables and table_name not in original_table_state:"


LOCKED = (
    "batch_write_item",
    "delete_item",
    "put_item",
    "transact_write_items",
    "update_item",
)


def serialise_item_writes() -> None:
    # Re-entrant: a transaction's own steps may call the locked methods.
    lock = threading.RLock()
    for name in LOCKED:
        original = getattr(DynamoDBBackend, name)

        @functools.wraps(original)
        def locked(self, *args, _original=original, **kwargs):
            with lock:
                return _original(self, *args, **kwargs)

        setattr(DynamoDBBackend, name, locked)


def patch_transaction_backup() -> bool:
    source = textwrap.dedent(inspect.getsource(DynamoDBBackend.transact_write_items))
    if source.count(OLD) != 1:
        return False
    module = sys.modules[DynamoDBBackend.__module__]
    scope: dict = {}
    exec(compile(source.replace(OLD, NEW), module.__file__, "exec"), module.__dict__, scope)
    DynamoDBBackend.transact_write_items = scope["transact_write_items"]
    return True


if __name__ == "__main__":
    # The backup patch recompiles moto's own method: before the lock wraps it.
    if not patch_transaction_backup():
        print("moto_server.py: transaction backup not patched (moto changed); running moto as shipped", file=sys.stderr)
    if os.environ.get("MOTO_SERIAL_WRITES", "1") != "0":
        serialise_item_writes()
    sys.exit(main())
