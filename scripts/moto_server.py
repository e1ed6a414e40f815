"""moto's server for the tests, with one fix to its DynamoDB transactions.

moto 5.2.5 backs up a table before a TransactWriteItems (to roll back when a condition fails) by
deep-copying the whole table once per item of the transaction, each copy replacing the last.
Every copy is taken before anything is written, so one copy per table is the same backup. With
the outbox (an event item in every state change's transaction) that waste made the crash suite's
moto the bottleneck: each transaction cost (items in it) x (items in the table). This starts moto's
own server with the backup taken once per table; nothing else changes. If moto's code no longer
has the line this replaces, moto runs as shipped and says so.
"""

import inspect
import sys
import textwrap

from moto.dynamodb.models import DynamoDBBackend
from moto.server import main

OLD = "if table_name and table_name in self.tables:"
NEW = "if table_name and table_name in self.tables and table_name not in original_table_state:"


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
    if not patch_transaction_backup():
        print("moto_server.py: transaction backup not patched (moto changed); running moto as shipped", file=sys.stderr)
    sys.exit(main())
