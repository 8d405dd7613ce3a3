"""The PostgreSQL and Redis server fixtures, registered once for every test module here (a
module importing them itself would define a second session fixture and start a second server)."""

from tests.userservice.postgres_server import postgres_database_url, postgres_url  # noqa: F401
from tests.userservice.redis_server import empty_redis_url, private_redis, redis_url  # noqa: F401
