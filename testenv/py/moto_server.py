"""The AWS emulator as every test and the local stack run it: moto's server, plus the AWS behaviours
the code relies on that moto does not reproduce. Each is documented by AWS, and each has a test of
its own in functions/tests/emulator.rs.

- IAM's authorization of every request signed by a registered principal (iam_authorize.py): identity,
  resource and VPC endpoint policies evaluated by a real policy engine, AWS's AccessDenied answers,
  and S3's 403 for a missing key to a principal that may not list the bucket.
- S3's checks of pre-signed requests (s3_presigned.py): the signature, expiry and access key of
  query-string-signed links, and the signature, expiration and conditions of POST policies.
- SQS's checks of a query-signed request (a warm slot's wake link, a `ReceiveMessage` GET): the
  same checks, answered as SQS answers (s3_presigned.py); the request routed by its credential
  scope (moto takes an unsigned GET for S3's) and answered in the query protocol's XML (moto
  answers a request without a content type in SQS's JSON).
- DynamoDB's atomic writes: a conditional write, and a transaction, is one indivisible step (AWS
  Developer Guide, "Condition expressions", "TransactWriteItems"). moto's threaded server checks a
  condition and writes in two steps another request can come between (two conditional claims of one
  job could both succeed), and its TransactWriteItems snapshots whole tables and restores them when
  a condition fails, undoing every write other requests made meanwhile. Here DynamoDB requests are
  served one at a time, and a transaction checks every condition before it writes anything.
- ECS RunTask's clientToken (ECS API reference, "Ensuring idempotency"): per cluster and for 24
  hours, a request with a token already used and the same parameters answers the tasks the first
  request started, starting none; with other parameters it fails with ConflictException, whose
  resourceIds are the ARNs of those tasks. moto ignores the token and starts a task every time.

- DynamoDB TransactWriteItems' ClientRequestToken (API reference, TransactWriteItems): for 10
  minutes an identical request with a token used before is answered as a success and applied no
  more; with other parameters it fails with IdempotentParameterMismatchException. The SDKs fill the
  token in and their retries share it. moto ignores it, so a retry of a transaction whose answer
  was lost was refused by its own condition.

- ECS's account of a stopped task (ECS API reference, DescribeTasks: a container's `exitCode` and
  `reason` "if the container has stopped"; the task's `stopCode` and `stoppedReason`): a running
  container has no exit code (moto reports 0 from the start, so a crashed agent would read as a
  success), and what the Fargate stand-in saw when an agent exited is recorded on the task (POST
  /_testenv/ecs/stopped with the task's state-change detail), as ECS records it before its event.

- S3's expected bucket owner (S3 User Guide, "Verifying bucket ownership with bucket owner
  condition"): a request with `x-amz-expected-bucket-owner` naming another account than the
  bucket's fails with 403 AccessDenied. moto ignores the header. Every bucket here is the
  emulator's one account's (MOTO_ACCOUNT_ID, default 123456789012).

Two changes are for speed only, answers unchanged, so that the emulator (one Python process) is not
the bottleneck a benchmark measures: werkzeug's line per request is not formatted (its output went
nowhere), the list of moto's services is read once instead of from disk at each request, and SQS's receive reads a queue's retention period directly, where moto built every
attribute of the queue (counting its messages) for each message it handed out, and reads the clock
with time.time() instead of through datetime, and S3's ListObjectVersions reads only the keys under
its prefix. GET /_testenv/calls answers the requests served so far by caller and operation, with the
CPU time each took (?reset starts afresh), so a benchmark can say where the emulator's time went.

Usage: python moto_server.py [moto_server's arguments]
"""

import json
import logging
import os
import sys
import threading
import time
from urllib.parse import parse_qs

from moto.core.responses import ActionResult
from moto.ecs.exceptions import ECSException
from moto.ecs.responses import EC2ContainerServiceResponse
import moto.ecs.models as ecs
import moto.dynamodb.models as ddb
import moto.s3.models as s3
import moto.sqs.models as sqs
import moto.backends
import moto.server
from moto.server import main

import iam_authorize
import s3_presigned

logging.getLogger("werkzeug").setLevel(logging.ERROR)

# moto lists its package directory (a stat of each of some 200 entries) to route every request.
_moto_modules = tuple(moto.backends.list_of_moto_modules())
moto.backends.list_of_moto_modules = lambda: _moto_modules


def _unix_time(dt=None):
    return time.time() if dt is None else _moto_unix_time(dt)


def _unix_time_millis(dt=None):
    return time.time() * 1000.0 if dt is None else _moto_unix_time(dt) * 1000.0


_moto_unix_time = sqs.unix_time
sqs.unix_time = _unix_time
sqs.unix_time_millis = _unix_time_millis


def _retained(self, queue_name, message):
    return message.sent_timestamp / 1000 + int(self.get_queue(queue_name).message_retention_period) > time.time()


sqs.SQSBackend.is_message_valid_based_on_retention_period = _retained


# S3's ListObjectVersions deep-copies every version of every key in the bucket, contents included,
# before it looks at the prefix: a listing of one job's keys read the whole bucket (some 60 ms
# with a few hundred jobs' outputs). Here the bucket it reads shows only the keys under the prefix;
# every key it skipped failed the prefix test it applies anyway, so the answer is the same.
class _KeysUnder:
    def __init__(self, keys, prefix):
        self._keys, self._prefix = keys, prefix

    def iterlists(self):
        return ((k, v) for k, v in self._keys.iterlists() if k.startswith(self._prefix))


class _BucketUnder:
    def __init__(self, bucket, prefix):
        self._bucket, self.keys = bucket, _KeysUnder(bucket.keys, prefix)

    def __getattr__(self, name):
        return getattr(self._bucket, name)


_listing = threading.local()
_get_bucket = s3.S3Backend.get_bucket
_list_object_versions = s3.S3Backend.list_object_versions


def _get_bucket_listed(self, bucket_name):
    bucket = _get_bucket(self, bucket_name)
    prefix = getattr(_listing, "prefix", None)
    return _BucketUnder(bucket, prefix) if prefix else bucket


def _list_object_versions_under(self, bucket_name, *args, **kwargs):
    _listing.prefix = kwargs.get("prefix") or None
    try:
        return _list_object_versions(self, bucket_name, *args, **kwargs)
    finally:
        _listing.prefix = None


s3.S3Backend.get_bucket = _get_bucket_listed
s3.S3Backend.list_object_versions = _list_object_versions_under

# How long ECS remembers a RunTask clientToken.
TOKEN_TTL_SECONDS = 24 * 3600


class ConflictException(ECSException):
    code = "ConflictException"

    def __init__(self, resource_ids):
        super().__init__(
            "The specified client token is already in use with a different RunTask request; "
            "resourceIds are the tasks already associated with it."
        )
        # The error shape's member, serialized by moto from the attribute of its name.
        self.resourceIds = resource_ids


_tokens = {}
_lock = threading.Lock()
_moto_run_task = EC2ContainerServiceResponse.run_task


def _run_task(self):
    token = self._get_param("clientToken")
    if not token:
        return _moto_run_task(self)
    params = {k: v for k, v in json.loads(self.body or "{}").items() if k != "clientToken"}
    fingerprint = json.dumps(params, sort_keys=True)
    cluster = self._get_param("cluster", "default")
    key = (self.current_account, self.region, cluster.split("/")[-1], token)
    with _lock:
        now = time.time()
        prior = _tokens.get(key)
        if prior is not None and now - prior["at"] < TOKEN_TTL_SECONDS:
            if prior["fingerprint"] != fingerprint:
                raise ConflictException(prior["arns"])
            tasks = self.ecs_backend.describe_tasks(cluster, prior["arns"])
            return ActionResult({"tasks": tasks, "failures": []})
        result = _moto_run_task(self)
        arns = [task.task_arn for task in result.result["tasks"]]
        _tokens[key] = {"fingerprint": fingerprint, "at": now, "arns": arns}
        return result


EC2ContainerServiceResponse.run_task = _run_task

_moto_container_init = ecs.Container.__init__


def _container_init(self, task_def):
    _moto_container_init(self, task_def)
    # No exit code, nor reason, until the container stopped.
    self.exitCode = None
    self.reason = None


ecs.Container.__init__ = _container_init

ECS_STOPPED_PATH = "/_testenv/ecs/stopped"


def _task_stopped(environ, start_response):
    """Records a task as stopped, as the Fargate stand-in saw it (a task state-change detail:
    taskArn, clusterArn, stopCode, stoppedReason, containers with exitCode and reason)."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    detail = json.loads(environ["wsgi.input"].read(length) or b"{}")
    arn = detail.get("taskArn", "")
    region = arn.split(":")[3] if arn.count(":") >= 5 else os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
    backend = ecs.ecs_backends[ACCOUNT_ID][region]
    cluster = (detail.get("clusterArn") or "default").split("/")[-1]
    task = next((t for a, t in backend.tasks.get(cluster, {}).items() if a.split("/")[-1] == arn.split("/")[-1]), None)
    if task is None:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [f"no task {arn} in cluster {cluster}".encode()]
    task.last_status = "STOPPED"
    task.desired_status = "STOPPED"
    task.stopped_reason = detail.get("stoppedReason") or task.stopped_reason
    task.stop_code = task.stopCode = detail.get("stopCode")
    by_name = {c.get("name"): c for c in detail.get("containers", [])}
    for c in task.containers:
        seen = by_name.get(c.name, {})
        c.last_status = "STOPPED"
        c.exitCode = seen.get("exitCode")
        c.reason = seen.get("reason")
    start_response("204 No Content", [])
    return [b""]

# DynamoDB requests one at a time (see the module's doc).
_dynamodb_lock = threading.Lock()


def _transact_write_items(self, transact_items):
    """Every condition first, against the items as they are (nothing else writes meanwhile);
    then every write, or none: without moto's whole-table snapshot and restore."""
    if len(transact_items) > 100:
        raise ddb.TooManyTransactionsException()
    ops, seen, errors = [], set(), []
    for item in transact_items:
        if len(item) != 1:
            raise ddb.TransactWriteSingleOpException()
        op_type, op = next(iter(item.items()))
        if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
            raise ValueError("Unsupported transaction operation")
        table = self.get_table(op["TableName"])
        if op_type == "Put":
            key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
            if table.range_key_attr is not None:
                key[table.range_key_attr] = op["Item"][table.range_key_attr]
        else:
            key = op["Key"]
        unique = (op["TableName"], json.dumps(key, sort_keys=True))
        if unique in seen:
            raise ddb.MultipleTransactionsException()
        seen.add(unique)
        condition = op.get("ConditionExpression")
        names, values = op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
        current = self.get_item(op["TableName"], key)
        if condition is not None and not ddb.get_filter_expression(condition, names, values).expr(current):
            errors.append(("ConditionalCheckFailed", "The conditional request failed", None))
        else:
            errors.append((None, None, None))
        ops.append((op_type, op, key, names, values))
    if any(code is not None for code, _, _ in errors):
        raise ddb.TransactionCanceledException(errors)
    for op_type, op, key, names, values in ops:
        if op_type == "Put":
            self.put_item(op["TableName"], op["Item"], expression_attribute_names=names, expression_attribute_values=values)
        elif op_type == "Delete":
            self.delete_item(op["TableName"], key, expression_attribute_names=names, expression_attribute_values=values)
        elif op_type == "Update":
            self.update_item(
                op["TableName"], key, update_expression=op["UpdateExpression"], expression_attribute_names=names, expression_attribute_values=values
            )


ddb.DynamoDBBackend.transact_write_items = _transact_write_items

# TransactWriteItems' ClientRequestToken (DynamoDB API reference, TransactWriteItems): for 10 minutes
# after a request that used a token completed, an identical request with that token has no effect
# and is answered as a success; one with other parameters fails with
# IdempotentParameterMismatchException. The SDKs fill the token in and their retries share it, so
# a retry of a transaction whose answer was lost is an answer, not a second attempt that a
# condition refuses. moto ignores the token. Kept here: token -> (request digest, until, answer).
IDEMPOTENCY_SECONDS = 600
_transaction_tokens = {}


def _idempotent_transaction(environ, start_response, serve):
    body = iam_authorize._read_body(environ)
    try:
        request = json.loads(body or b"{}")
    except ValueError:
        request = {}
    token = request.get("ClientRequestToken")
    if not token:
        return list(serve(environ, start_response))
    digest = json.dumps({k: v for k, v in request.items() if k != "ClientRequestToken"}, sort_keys=True)
    now = time.time()
    for t in [t for t, seen in _transaction_tokens.items() if seen[1] < now]:
        del _transaction_tokens[t]
    seen = _transaction_tokens.get(token)
    if seen is not None:
        if seen[0] != digest:
            answer = json.dumps({
                "__type": "com.amazonaws.dynamodb.v20120810#IdempotentParameterMismatchException",
                "message": "The request uses the same client token as a previous, but non-identical request.",
            }).encode()
            start_response("400 Bad Request", [("Content-Type", "application/x-amz-json-1.0"), ("Content-Length", str(len(answer)))])
            return [answer]
        status, headers, answer = seen[2]
        start_response(status, headers)
        return [answer]
    captured = {}

    def capture(status, headers, exc_info=None):
        captured["status"], captured["headers"] = status, headers
        return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

    answer = b"".join(serve(environ, capture))
    if captured.get("status", "").startswith("200"):
        _transaction_tokens[token] = (digest, time.time() + IDEMPOTENCY_SECONDS, (captured["status"], captured["headers"], answer))
    return [answer]

_Dispatcher = moto.server.DomainDispatcherApplication

ACCOUNT_ID = os.environ.get("MOTO_ACCOUNT_ID", "123456789012")


def _expected_owner(app):
    def serve(environ, start_response):
        expected = environ.get("HTTP_X_AMZ_EXPECTED_BUCKET_OWNER")
        if expected is not None and expected != ACCOUNT_ID:
            body = (
                '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
                "<Message>Access Denied</Message><RequestId>testenv</RequestId></Error>"
            ).encode()
            start_response("403 Forbidden", [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
            return [body]
        return app(environ, start_response)

    return serve


CALLS_PATH = "/_testenv/calls"
# Requests served, by (caller, service, operation): [count, CPU seconds of the serving thread,
# seconds to answer]. GET CALLS_PATH answers them as JSON (and starts afresh with ?reset), so a
# benchmark can say whose requests the emulator's time went to.
_calls = {}
_calls_lock = threading.Lock()


def _caller(environ):
    """(the calling role or "unsigned", the service, the operation) of a request."""
    credential = iam_authorize._credential(environ)
    principal = iam_authorize.PRINCIPALS.get(credential[0]) if credential else None
    arn = (principal or {}).get("session_arn", "")
    who = arn.split("/")[1] if ":assumed-role/" in arn else ("signed" if credential else "unsigned")
    service = credential[2] if credential else "?"
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    operation = target.split(".")[-1] if target else environ.get("REQUEST_METHOD", "?")
    return f"{who} {service}:{operation}"


def _counted(app, environ, start_response):
    key = _caller(environ)
    wall, cpu = time.perf_counter(), time.thread_time()
    body = list(app(environ, start_response))
    cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
    with _calls_lock:
        c = _calls.setdefault(key, [0, 0.0, 0.0])
        c[0] += 1
        c[1] += cpu
        c[2] += wall
    return body


def _served_calls(environ, start_response):
    with _calls_lock:
        body = json.dumps(_calls).encode()
        if "reset" in environ.get("QUERY_STRING", ""):
            _calls.clear()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


class _CheckedDispatcher(_Dispatcher):
    """moto's application, behind S3's checks of pre-signed requests (authentication) and then
    IAM's authorization, as AWS orders them."""

    def infer_service_region_host(self, environ, path):
        # moto routes a request by its Authorization header and takes any other for S3's; a
        # request signed in its query string to another service (SQS's query API through a
        # pre-signed link) is routed by its credential scope, as its header would be.
        if not environ.get("HTTP_AUTHORIZATION") and s3_presigned.query_service(environ) != "s3":
            credential = parse_qs(environ.get("QUERY_STRING", "")).get("X-Amz-Credential", [""])[0]
            routed = dict(environ, HTTP_AUTHORIZATION=f"AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders=host, Signature=0")
            return super().infer_service_region_host(routed, path)
        return super().infer_service_region_host(environ, path)

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") == ECS_STOPPED_PATH and environ.get("REQUEST_METHOD") == "POST":
            return _task_stopped(environ, start_response)
        if environ.get("PATH_INFO") == CALLS_PATH and environ.get("REQUEST_METHOD") == "GET":
            return _served_calls(environ, start_response)
        iam_authorize.route(environ)
        if environ.get("REQUEST_METHOD") == "GET" and not environ.get("CONTENT_TYPE") and "X-Amz-Credential=" in environ.get("QUERY_STRING", "") and s3_presigned.query_service(environ) != "s3":
            # A GET of another service's query API (a pre-signed link) is its query protocol,
            # answered in XML; moto takes a request without a content type for the service's
            # default protocol (SQS's is JSON now).
            environ["CONTENT_TYPE"] = "application/x-www-form-urlencoded"
        moto_app = super().__call__
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):

            def moto_app(environ, start_response, serve=moto_app):
                # The whole answer under the lock: moto builds it from the items as they are.
                # (Authorization, before it, reads no item: requests wait only for each other's
                # reads and writes.)
                with _dynamodb_lock:
                    if environ.get("HTTP_X_AMZ_TARGET", "").endswith(".TransactWriteItems"):
                        return _idempotent_transaction(environ, start_response, serve)
                    return list(serve(environ, start_response))

        served = _expected_owner(s3_presigned.checked(iam_authorize.authorized(moto_app)))
        return _counted(served, environ, start_response)


moto.server.DomainDispatcherApplication = _CheckedDispatcher

if __name__ == "__main__":
    sys.exit(main())
