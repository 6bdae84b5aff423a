"""The AWS emulator as every test and the local stack run it: moto's server, plus the AWS behaviours
the code relies on that moto does not reproduce. Each is documented by AWS, and each has a test of
its own in functions/tests/emulator.rs.

- IAM's authorization of every request signed by a registered principal (iam_authorize.py): identity,
  resource and VPC endpoint policies evaluated by a real policy engine, AWS's AccessDenied answers,
  and S3's 403 for a missing key to a principal that may not list the bucket.
- S3's checks of pre-signed requests (s3_presigned.py): the signature, expiry and access key of
  query-string-signed links, and the signature, expiration and conditions of POST policies.
- ECS RunTask's clientToken (ECS API reference, "Ensuring idempotency"): per cluster and for 24
  hours, a request with a token already used and the same parameters answers the tasks the first
  request started, starting none; with other parameters it fails with ConflictException, whose
  resourceIds are the ARNs of those tasks. moto ignores the token and starts a task every time.

Usage: python moto_server.py [moto_server's arguments]
"""

import json
import sys
import threading
import time

from moto.core.responses import ActionResult
from moto.ecs.exceptions import ECSException
from moto.ecs.responses import EC2ContainerServiceResponse
import moto.server
from moto.server import main

import iam_authorize
import s3_presigned

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

_Dispatcher = moto.server.DomainDispatcherApplication


class _CheckedDispatcher(_Dispatcher):
    """moto's application, behind S3's checks of pre-signed requests (authentication) and then
    IAM's authorization, as AWS orders them."""

    def __call__(self, environ, start_response):
        iam_authorize.route(environ)
        return s3_presigned.checked(iam_authorize.authorized(super().__call__))(environ, start_response)


moto.server.DomainDispatcherApplication = _CheckedDispatcher

if __name__ == "__main__":
    sys.exit(main())
