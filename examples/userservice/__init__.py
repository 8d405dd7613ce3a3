"""The source document's UserService, built as a user of protoc-gen-pyservice builds one.

The handlers live in `services/user_service.py`, the module `pyservice scaffold` wrote and we
filled in; everything else is either generated (`generated/user/v1`) or one of the parts here:
a repository (`store`), the `filter`/`order_by` grammar (`query`), signed page tokens
(`page_tokens`), password hashing (`passwords`), update fan-out (`events`, `redis_events`), the
GetUser cache (`cache`) and the environment settings (`config`). `python -m examples.userservice`
(`make serve`) runs it.
"""
