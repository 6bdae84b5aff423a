"""IAM authorization of the requests that reach the emulator, as AWS would authorize them; moto
authorizes nothing. Applied by moto_server.py before S3's checks of pre-signed requests.

Who is checked: requests signed (Authorization header, pre-signed query, or POST form) with an access
key registered by POST /_testenv/iam, which names the key's principal (a role ARN), the principal's
identity policies, and the resource and VPC endpoint policies of the stack (testenv/src/iam.rs
builds this from generated/). Requests with any other key (the test harness and the stand-ins that
play AWS services set up and inspect resources with "testing") are served unchecked, as an
administrator's would be.

What is checked, per request: the IAM action(s) AWS authorizes for the operation, on the resource
ARN(s) AWS uses, with the request context AWS supplies (aws:PrincipalArn, aws:SecureTransport,
aws:SourceVpce, s3:authType, s3:prefix, ecs:cluster, iam:PassedToService, ...), by a real policy
engine (npm's @cloud-copilot/iam-simulate, run as .tools/iam/authorize.mjs): identity policies, the
resource's policy (bucket, queue, KMS key), and the VPC endpoint's policy when the request came
through the endpoint. Beside the operation's own action, AWS's implicit checks: iam:PassRole for the
roles a RunTask passes, ecs:TagResource for a RunTask with tags, kms:GenerateDataKey / kms:Decrypt
on the key of an SSE-KMS bucket or queue written or read.

The VPC: AWS marks a request as coming through the S3 gateway endpoint by the network it comes from
(the agent's private subnets). Here the agent's process is given the emulator as its HTTP proxy
(testenv::iam::VPC_ROUTE_ENV), so its requests arrive in absolute form ("GET http://host/path");
those, and only those, get aws:SourceVpce and the endpoint's policy.

A denial is answered as the service answers it (S3: 403 AccessDenied XML; JSON protocols: 400
AccessDeniedException; SQS: 403 AccessDenied), with AWS's message ("User: ... is not authorized to
perform: ... on resource: ... because no identity-based policy allows ..."). S3's rule for a missing
key applies: a GET or HEAD of a key that does not exist answers 404 only to a principal allowed
s3:ListBucket on the bucket, 403 AccessDenied to any other.

The emulator's endpoint is plain HTTP standing for AWS's HTTPS endpoints: aws:SecureTransport is
"true". TESTENV_IAM=off turns all of this off (for debugging only; make test never sets it).
"""

import collections
import io
import json
import os
import re
import subprocess
import threading
import time
from urllib.parse import parse_qs, unquote, urlsplit

from werkzeug.formparser import parse_form_data

ENABLED = os.environ.get("TESTENV_IAM", "on") != "off"
ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
EVALUATOR = os.environ.get("TESTENV_IAM_EVALUATOR", os.path.join(ROOT, ".tools", "iam", "authorize.mjs"))
CONTROL_PATH = "/_testenv/iam"
# Where the stand-in model service asks whether a Bedrock API key may invoke a model.
BEDROCK_PATH = "/_testenv/bedrock"
# A file every denial is appended to (for reading why a test was refused).
DENIAL_LOG = os.environ.get("TESTENV_IAM_LOG")

# Access key id -> {"arn": role ARN, "session": session name, "account": ..., "policies": [...]}.
PRINCIPALS = {}
# Resource ARN (bucket, queue, KMS key) -> its resource policy.
RESOURCE_POLICIES = {}
# Bucket or queue ARN -> the KMS key ARN it encrypts with (SSE-KMS).
KMS_KEYS = {}
# The S3 gateway endpoint requests through the VPC route come through: {"id": ..., "policy": ...}.
ENDPOINT = {}
_registry_lock = threading.Lock()


class Evaluator:
    """The policy engine's process, started on first use, one request at a time. Its answer is a
    function of the simulation alone (policies, request and context are all in it; none depends on
    the time), so answers are remembered: the functions ask the same questions over and over."""

    REMEMBERED = 4096

    def __init__(self):
        self._proc = None
        self._lock = threading.Lock()
        self._answers = collections.OrderedDict()

    def evaluate(self, simulation):
        line = json.dumps(simulation, sort_keys=True) + "\n"
        with self._lock:
            if line in self._answers:
                self._answers.move_to_end(line)
                return json.loads(self._answers[line])
        answer = self._ask(line)
        with self._lock:
            self._answers[line] = answer
            if len(self._answers) > self.REMEMBERED:
                self._answers.popitem(last=False)
        return json.loads(answer)

    def _ask(self, line):
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                if not os.path.exists(EVALUATOR):
                    raise RuntimeError(f"{EVALUATOR} is missing: run `scripts/tools.sh iam` (make test does)")
                self._proc = subprocess.Popen(
                    ["node", EVALUATOR], cwd=os.path.dirname(EVALUATOR), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
                )
            self._proc.stdin.write(line)
            self._proc.stdin.flush()
            answer = self._proc.stdout.readline()
        if not answer:
            raise RuntimeError("the IAM policy engine exited")
        return answer


EVALUATE = Evaluator()


class Denied(Exception):
    def __init__(self, message):
        super().__init__(message)
        self.message = message


class Check:
    """One authorization AWS makes for a request: an action on a resource, with context."""

    def __init__(self, action, resource, context=None, resource_policy_of=None, trust=False):
        self.action, self.resource = action, resource
        self.context = context or {}
        # The ARN whose resource policy applies (the bucket of an object, the queue, the key).
        self.resource_policy_of = resource_policy_of
        # A role's trust policy, which must allow by itself: evaluated without identity policies.
        self.trust = trust


def _json_body(environ):
    body = _read_body(environ)
    try:
        return json.loads(body or b"{}")
    except ValueError:
        return {}


def _read_body(environ):
    if "testenv.body" not in environ:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["testenv.body"] = body
    environ["wsgi.input"] = io.BytesIO(environ["testenv.body"])
    return environ["testenv.body"]


def _credential(environ):
    """(access key, region, service, how it is signed) of a request, or None when unsigned."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    m = re.search(r"Credential=([^/,\s]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request", auth)
    if m:
        return m.group(1), m.group(3), m.group(4), "REST-HEADER"
    query = parse_qs(environ.get("QUERY_STRING", ""))
    if "X-Amz-Credential" in query:
        parts = query["X-Amz-Credential"][0].split("/")
        if len(parts) == 5:
            return parts[0], parts[2], parts[3], "REST-QUERY-STRING"
    if "AWSAccessKeyId" in query:  # a SigV2 link
        return query["AWSAccessKeyId"][0], os.environ.get("AWS_DEFAULT_REGION", "us-east-1"), "s3", "REST-QUERY-STRING"
    if environ.get("REQUEST_METHOD") == "POST" and environ.get("CONTENT_TYPE", "").startswith("multipart/form-data"):
        form = _form(environ)
        parts = form.get("x-amz-credential", "").split("/")
        if len(parts) == 5:
            return parts[0], parts[2], parts[3], "POST"
    return None


def _form(environ):
    body = _read_body(environ)
    copy = dict(environ)
    copy["wsgi.input"] = io.BytesIO(body)
    copy["CONTENT_LENGTH"] = str(len(body))
    _, form, _ = parse_form_data(copy)
    environ["wsgi.input"] = io.BytesIO(body)
    return {k.lower(): v for k, v in form.items()}


def _target(environ):
    return environ.get("HTTP_X_AMZ_TARGET", "").split(".")[-1]


# S3 -------------------------------------------------------------------------------------------


def _s3_checks(environ, region, account, auth_type):
    path = unquote(environ.get("PATH_INFO", "/")).lstrip("/")
    bucket, _, key = path.partition("/")
    method = environ["REQUEST_METHOD"]
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    bucket_arn = f"arn:aws:s3:::{bucket}"
    context = {"s3:authType": auth_type}
    if method == "POST" and not key and auth_type == "POST":
        key = _form(environ).get("key", "")
    if not bucket:
        return [Check("s3:ListAllMyBuckets", "*", context)]
    if key:
        obj = f"{bucket_arn}/{key}"
        version = "versionId" in query
        if method in ("GET", "HEAD"):
            action = "s3:GetObjectVersion" if version else "s3:GetObject"
            return [Check(action, obj, context, bucket_arn), *_kms(bucket_arn, "kms:Decrypt", "s3", region)]
        if method in ("PUT", "POST"):
            if "uploadId" in query or "uploads" in query:
                return [Check("s3:PutObject", obj, context, bucket_arn), *_kms(bucket_arn, "kms:GenerateDataKey", "s3", region)]
            if "tagging" in query:
                return [Check("s3:PutObjectTagging", obj, context, bucket_arn)]
            return [Check("s3:PutObject", obj, context, bucket_arn), *_kms(bucket_arn, "kms:GenerateDataKey", "s3", region)]
        if method == "DELETE":
            action = "s3:DeleteObjectVersion" if version else "s3:DeleteObject"
            return [Check(action, obj, context, bucket_arn)]
    else:
        if method == "GET" and "versions" in query:
            return [Check("s3:ListBucketVersions", bucket_arn, {**context, "s3:prefix": query.get("prefix", [""])[0]}, bucket_arn)]
        if method == "GET" and not (set(query) - {"list-type", "prefix", "delimiter", "max-keys", "continuation-token", "start-after", "encoding-type", "fetch-owner", "marker"}):
            return [Check("s3:ListBucket", bucket_arn, {**context, "s3:prefix": query.get("prefix", [""])[0]}, bucket_arn)]
        if method == "POST" and "delete" in query:
            body = _read_body(environ).decode("utf-8", "replace")
            keys = re.findall(r"<Key>(.*?)</Key>", body)
            return [Check("s3:DeleteObject", f"{bucket_arn}/{k}", context, bucket_arn) for k in keys]
    raise Denied(f"testenv cannot tell which IAM action authorizes {method} {environ.get('PATH_INFO')}?{environ.get('QUERY_STRING', '')}")


def _kms(resource_arn, action, service, region):
    key = KMS_KEYS.get(resource_arn)
    if not key:
        return []
    return [Check(action, key, {"kms:ViaService": f"{service}.{region}.amazonaws.com"}, key)]


# JSON protocols -------------------------------------------------------------------------------


def _dynamodb_checks(environ, region, account):
    op, body = _target(environ), _json_body(environ)
    table = lambda name: f"arn:aws:dynamodb:{region}:{account}:table/{name}"
    if op in ("Query", "Scan"):
        arn = table(body.get("TableName", ""))
        if body.get("IndexName"):
            arn += f"/index/{body['IndexName']}"
        return [Check(f"dynamodb:{op}", arn)]
    if op == "TransactWriteItems":
        kinds = {"ConditionCheck": "ConditionCheckItem", "Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem"}
        return [
            Check(f"dynamodb:{kinds[kind]}", table(item[kind]["TableName"]))
            for item in body.get("TransactItems", [])
            for kind in item
            if kind in kinds
        ]
    if op == "TransactGetItems":
        return [Check("dynamodb:GetItem", table(item["Get"]["TableName"])) for item in body.get("TransactItems", [])]
    if op in ("BatchGetItem", "BatchWriteItem"):
        return [Check(f"dynamodb:{op}", table(name)) for name in body.get("RequestItems", {})]
    if op == "ListTables":
        return [Check("dynamodb:ListTables", "*")]
    return [Check(f"dynamodb:{op}", table(body.get("TableName", "")))]


def _queue_arn(url_or_name, region, account):
    parts = urlsplit(url_or_name).path.strip("/").split("/") if "://" in url_or_name else [account, url_or_name]
    return f"arn:aws:sqs:{region}:{parts[0]}:{parts[-1]}"


def _sqs_checks(environ, region, account):
    op, body = _target(environ), _json_body(environ)
    if not op:  # the query protocol: its parameters in the body, or in the query of a GET (a link)
        raw = _read_body(environ).decode() if environ.get("REQUEST_METHOD") != "GET" else environ.get("QUERY_STRING", "")
        form = {k: v[0] for k, v in parse_qs(raw).items()}
        op, body = form.get("Action", ""), form
    action = {"SendMessageBatch": "SendMessage", "DeleteMessageBatch": "DeleteMessage", "ChangeMessageVisibilityBatch": "ChangeMessageVisibility"}.get(op, op)
    if op in ("ListQueues",):
        return [Check("sqs:ListQueues", "*")]
    queue = body.get("QueueUrl") or body.get("QueueName", "")
    path = environ.get("PATH_INFO", "/").strip("/")
    if not queue and path.count("/") == 1:  # the query API at the queue's own URL (a link)
        queue = f"http://queue/{path}"
    arn = _queue_arn(queue, region, account)
    checks = [Check(f"sqs:{action}", arn, {}, arn)]
    if action == "SendMessage":
        checks += _kms(arn, "kms:GenerateDataKey", "sqs", region) + _kms(arn, "kms:Decrypt", "sqs", region)
    elif action == "ReceiveMessage":
        checks += _kms(arn, "kms:Decrypt", "sqs", region)
    return checks


def _ecs_checks(environ, region, account):
    op, body = _target(environ), _json_body(environ)
    cluster = body.get("cluster", "default")
    if not cluster.startswith("arn:"):
        cluster = f"arn:aws:ecs:{region}:{account}:cluster/{cluster}"
    cluster_name = cluster.split("/")[-1]
    context = {"ecs:cluster": cluster}
    task_arn = lambda t: t if t.startswith("arn:") else f"arn:aws:ecs:{region}:{account}:task/{cluster_name}/{t}"
    if op == "RunTask":
        definition = _task_definition(body.get("taskDefinition", ""), region, account)
        named = body.get("taskDefinition", "")
        if not named.startswith("arn:"):
            named = f"arn:aws:ecs:{region}:{account}:task-definition/{named}"
        checks = [Check("ecs:RunTask", definition.arn if definition else named, context)]
        overrides = body.get("overrides") or {}
        roles = {r for r in (overrides.get("taskRoleArn"), overrides.get("executionRoleArn")) if r}
        if definition is not None:
            roles |= {r for r in (getattr(definition, "task_role_arn", None), getattr(definition, "execution_role_arn", None)) if r}
        checks += [Check("iam:PassRole", role, {"iam:PassedToService": "ecs-tasks.amazonaws.com"}) for role in sorted(roles)]
        if body.get("tags"):
            checks.append(Check("ecs:TagResource", task_arn("new-task"), {"ecs:CreateAction": "RunTask", **context}))
        return checks
    if op in ("StopTask",):
        return [Check("ecs:StopTask", task_arn(body.get("task", "")), context)]
    if op == "DescribeTasks":
        return [Check("ecs:DescribeTasks", task_arn(t), context) for t in body.get("tasks", [])]
    if op == "ListTasks":
        return [Check("ecs:ListTasks", f"arn:aws:ecs:{region}:{account}:container-instance/{cluster_name}/*", context)]
    return [Check(f"ecs:{op}", "*", context)]


def _query_body(environ):
    return {k: v[0] for k, v in parse_qs(_read_body(environ).decode(errors="replace")).items()}


def _sts_checks(environ, region, account):
    """sts:AssumeRole needs both: the caller's identity policy allows it on the role, and the role's
    trust policy allows the caller (IAM requires a trust policy to allow explicitly, even a role
    assuming itself)."""
    body = _query_body(environ)
    op = body.get("Action", "")
    if op == "AssumeRole":
        role = body.get("RoleArn", "")
        return [Check("sts:AssumeRole", role, resource_policy_of=role), Check("sts:AssumeRole", role, resource_policy_of=role, trust=True)]
    return [Check(f"sts:{op}", "*")]


def _task_definition(name, region, account):
    from moto.ecs.models import ecs_backends

    try:
        return ecs_backends[account][region].describe_task_definition(name)
    except Exception:
        return None


def _logs_checks(environ, region, account):
    op, body = _target(environ), _json_body(environ)
    group = f"arn:aws:logs:{region}:{account}:log-group:{body.get('logGroupName', '')}"
    if op in ("GetLogEvents", "PutLogEvents"):
        return [Check(f"logs:{op}", f"{group}:log-stream:{body.get('logStreamName', '')}")]
    if op == "DescribeLogGroups":
        return [Check("logs:DescribeLogGroups", "*")]
    return [Check(f"logs:{op}", group)]


def _ssm_checks(environ, region, account):
    op, body = _target(environ), _json_body(environ)
    param = lambda name: f"arn:aws:ssm:{region}:{account}:parameter/{name.lstrip('/')}"
    if op == "GetParameters":
        return [Check("ssm:GetParameters", param(n)) for n in body.get("Names", [])]
    if op == "GetParametersByPath":
        return [Check("ssm:GetParametersByPath", param(body.get("Path", "")))]
    return [Check(f"ssm:{op}", param(body.get("Name", "")))]


CHECKS = {"dynamodb": _dynamodb_checks, "sqs": _sqs_checks, "ecs": _ecs_checks, "logs": _logs_checks, "ssm": _ssm_checks, "sts": _sts_checks}


# Evaluation -----------------------------------------------------------------------------------


def _simulation(principal, check, via_endpoint, account):
    context = {
        "aws:PrincipalArn": principal["arn"],
        "aws:PrincipalAccount": principal.get("account", account),
        "aws:PrincipalType": "AssumedRole",
        "aws:SecureTransport": "true",
        **check.context,
    }
    endpoint_policies = []
    if via_endpoint and ENDPOINT:
        context["aws:SourceVpce"] = ENDPOINT["id"]
        if ENDPOINT.get("vpc"):
            context["aws:SourceVpc"] = ENDPOINT["vpc"]
        if check.action.startswith(ENDPOINT.get("service", "s3") + ":"):
            endpoint_policies = [{"name": ENDPOINT["id"], "policy": ENDPOINT["policy"]}]
    simulation = {
        "request": {
            "principal": principal["session_arn"],
            "action": check.action,
            "resource": {"resource": check.resource, "accountId": account},
            "contextVariables": context,
        },
        "identityPolicies": [] if check.trust else principal["policies"],
        "serviceControlPolicies": [],
        "resourceControlPolicies": [],
    }
    policy = RESOURCE_POLICIES.get(check.resource_policy_of)
    if policy is not None and check.trust:
        # The trust policy must allow by itself. One that trusts the account delegates to the
        # caller's identity policy (checked separately): here it counts as naming the caller.
        policy = json.loads(json.dumps(policy).replace(f'"arn:aws:iam::{account}:root"', json.dumps(principal["arn"])))
    if policy is not None:
        simulation["resourcePolicy"] = policy
    if endpoint_policies:
        simulation["vpcEndpointPolicies"] = endpoint_policies
    return simulation


def _authorize(principal, check, via_endpoint, account):
    answer = EVALUATE.evaluate(_simulation(principal, check, via_endpoint, account))
    if answer["decision"] == "Allowed" and principal.get("session_policy") and not check.trust:
        # A session of sts:AssumeRole with a policy: its permissions are the role's and the
        # session policy's intersection, so the session policy must allow too.
        narrowed = dict(principal, policies=[{"name": "session-policy", "policy": principal["session_policy"]}])
        answer = EVALUATE.evaluate(_simulation(narrowed, check, via_endpoint, account))
        if answer["decision"] != "Allowed" and answer["decision"] != "Error":
            answer["why"] = "because no session policy allows the action"
    if answer["decision"] == "Allowed":
        return
    if answer["decision"] == "Error":
        raise Denied(f"testenv could not evaluate {check.action} on {check.resource}: {json.dumps(answer.get('errors'))}")
    raise Denied(
        f"User: {principal['session_arn']} is not authorized to perform: {check.action} on resource: {check.resource} {answer['why']}"
    )


def _allowed(principal, check, via_endpoint, account):
    try:
        _authorize(principal, check, via_endpoint, account)
        return True
    except Denied:
        return False


def _deny(start_response, service, message, query_protocol=False):
    if DENIAL_LOG:
        with open(DENIAL_LOG, "a") as log:
            log.write(message + "\n")
    if service == "s3":
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>AccessDenied</Code><Message>{_xml(message)}</Message><RequestId>testenv</RequestId></Error>"
        ).encode()
        start_response("403 Forbidden", [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
        return [body]
    # A query API's XML (STS; SQS's query protocol, a pre-signed link's GET).
    namespace = {"sts": "https://sts.amazonaws.com/doc/2011-06-15/", "sqs": "http://queue.amazonaws.com/doc/2012-11-05/"}.get(service)
    if namespace and (service == "sts" or query_protocol):
        body = (
            f'<ErrorResponse xmlns="{namespace}"><Error><Type>Sender</Type><Code>AccessDenied</Code>'
            f"<Message>{_xml(message)}</Message></Error><RequestId>testenv</RequestId></ErrorResponse>"
        ).encode()
        start_response("403 Forbidden", [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))])
        return [body]
    if service == "sqs":
        body = json.dumps({"__type": "com.amazonaws.sqs#AccessDenied", "message": message}).encode()
        start_response(
            "403 Forbidden",
            [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-query-error", "AccessDenied;Sender"), ("Content-Length", str(len(body)))],
        )
        return [body]
    body = json.dumps({"__type": "AccessDeniedException", "message": message}).encode()
    start_response("400 Bad Request", [("Content-Type", "application/x-amz-json-1.1"), ("Content-Length", str(len(body)))])
    return [body]


def _xml(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _register(environ, start_response):
    spec = _json_body(environ)
    with _registry_lock:
        for key, principal in spec.get("principals", {}).items():
            PRINCIPALS[key] = principal
        RESOURCE_POLICIES.update(spec.get("resource_policies", {}))
        KMS_KEYS.update(spec.get("kms_keys", {}))
        if spec.get("endpoint"):
            ENDPOINT.clear()
            ENDPOINT.update(spec["endpoint"])
    import s3_presigned

    s3_presigned.SECRETS.update({k: p["secret"] for k, p in spec.get("principals", {}).items()})
    # Sessions to end now (a test's way to reach a session's expiry without waiting for it).
    for key in spec.get("expire", []):
        _expire(key, time.time() - 1)
    start_response("204 No Content", [])
    return [b""]


def _expire(key, at):
    import s3_presigned

    with _registry_lock:
        if key in PRINCIPALS:
            PRINCIPALS[key]["expires"] = at
    s3_presigned.EXPIRES[key] = at


def _assume_role(app, environ, start_response, account):
    """Serves an (authorized) AssumeRole and registers the session it answers: S3 knows its key
    (pre-signed links check their signature with its secret) until its expiry, and it signs as the
    role (with the role's policies, as registered for the role's own keys)."""
    role = _query_body(environ).get("RoleArn", "")
    session_name = _query_body(environ).get("RoleSessionName", "session")
    session_policy = _query_body(environ).get("Policy")
    status, headers, body = _served(app, environ)
    if status.startswith("200"):
        text = body.decode(errors="replace")
        field = lambda name: (re.search(f"<{name}>([^<]*)</{name}>", text) or [None, None])[1]
        key, secret, expiration = field("AccessKeyId"), field("SecretAccessKey"), field("Expiration")
        with _registry_lock:
            policies = next((p["policies"] for p in PRINCIPALS.values() if p["arn"] == role and "expires" not in p), None)
        if key and secret and expiration and policies is not None:
            import datetime

            import s3_presigned

            at = datetime.datetime.fromisoformat(expiration.replace("Z", "+00:00")).timestamp()
            with _registry_lock:
                PRINCIPALS[key] = {
                    "arn": role,
                    "session_arn": f"arn:aws:sts::{account}:assumed-role/{role.rsplit('/', 1)[-1]}/{session_name}",
                    "account": account,
                    "secret": secret,
                    "policies": policies,
                    "expires": at,
                }
                if session_policy:
                    PRINCIPALS[key]["session_policy"] = json.loads(session_policy)
            s3_presigned.SECRETS[key] = secret
            s3_presigned.EXPIRES[key] = at
    start_response(status, headers)
    return [body]


def _served(app, environ):
    """What `app` answers `environ`: (status, headers, body), for a check that reads the answer."""
    captured = {}

    def capture(status, headers, exc_info=None):
        captured["status"], captured["headers"] = status, headers
        return lambda data: None

    body = b"".join(app(environ, capture))
    return captured["status"], captured["headers"], body


def _expired(start_response, service):
    if service == "s3":
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            "<Error><Code>ExpiredToken</Code><Message>The provided token has expired.</Message><RequestId>testenv</RequestId></Error>"
        ).encode()
        start_response("400 Bad Request", [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
        return [body]
    body = json.dumps({"__type": "ExpiredTokenException", "message": "The security token included in the request is expired"}).encode()
    start_response("400 Bad Request", [("Content-Type", "application/x-amz-json-1.1"), ("Content-Length", str(len(body)))])
    return [body]


def route(environ):
    """Marks a request that came through the VPC route (the agent's proxy setting: the request
    names its absolute URL) and gives it the path it would have had directly. Runs first, before
    any check reads the path."""
    raw = environ.get("REQUEST_URI") or environ.get("RAW_URI") or ""
    if raw.startswith("http://") or raw.startswith("https://"):
        split = urlsplit(raw)
        environ["REQUEST_URI"] = environ["RAW_URI"] = split.path + (f"?{split.query}" if split.query else "")
        environ["PATH_INFO"] = unquote(split.path)
        environ["testenv.via_endpoint"] = True
    return environ


def authorized(app):
    """`app` (the emulator's WSGI application) behind IAM's authorization."""

    def serve(environ, start_response):
        via_endpoint = environ.get("testenv.via_endpoint", False)
        if environ.get("PATH_INFO") == CONTROL_PATH and environ.get("REQUEST_METHOD") == "POST":
            return _register(environ, start_response)
        if environ.get("PATH_INFO") == BEDROCK_PATH and environ.get("REQUEST_METHOD") == "POST":
            return _bedrock(environ, start_response)
        credential = _credential(environ)
        principal = PRINCIPALS.get(credential[0]) if credential else None
        if not ENABLED or principal is None:
            # Unchecked, but a session is a session: S3 must know its key.
            if credential and credential[2] == "sts" and _query_body(environ).get("Action") == "AssumeRole":
                return _assume_role(app, environ, start_response, (principal or {}).get("account", "123456789012"))
            return app(environ, start_response)
        _, region, service, auth_type = credential
        account = principal.get("account", "123456789012")
        if principal.get("expires") is not None and time.time() >= principal["expires"]:
            return _expired(start_response, service)
        try:
            if service == "s3":
                checks = _s3_checks(environ, region, account, auth_type)
            elif service in CHECKS:
                checks = CHECKS[service](environ, region, account)
            else:
                raise Denied(f"testenv does not authorize the {service} service")
            for check in checks:
                _authorize(principal, check, via_endpoint, account)
        except Denied as denied:
            return _deny(start_response, service, denied.message, query_protocol=not environ.get("HTTP_X_AMZ_TARGET"))
        except Exception as e:  # a fault of this module: loud, never an allow
            import traceback

            return _deny(start_response, service, f"testenv's IAM check failed: {e!r}: {traceback.format_exc()}")
        if service == "sts" and checks and checks[0].action == "sts:AssumeRole":
            return _assume_role(app, environ, start_response, account)
        if service == "s3" and environ["REQUEST_METHOD"] in ("GET", "HEAD") and checks and checks[0].action == "s3:GetObject":
            return _missing_key_is_forbidden(app, environ, start_response, principal, checks[0], via_endpoint, account)
        return app(environ, start_response)

    return serve


# Bedrock API keys ------------------------------------------------------------------------------

BEDROCK_KEY_PREFIX = "bedrock-api-key-"
BEDROCK_KEY_HOST = "bedrock.amazonaws.com"


def _bedrock(environ, start_response):
    """Bedrock's authorization of an InvokeModel called with a short-term API key, for the
    stand-in model service: POST {"token", "model"} answers 200 {"principal"} or 403 {"message"}.

    The key is `bedrock-api-key-` + base64 of a query-signed request of CallWithBearerToken to
    bedrock.amazonaws.com (without its scheme) and `&Version=1`: its signature is recomputed with
    the signing session's secret (botocore), it must not have expired (its own X-Amz-Expires, and
    its session's expiry), and the session must be allowed bedrock:CallWithBearerToken and
    bedrock:InvokeModel on the model: for an inference profile, on the profile and on its
    foundation model (AWS checks both)."""
    import base64
    import datetime

    import s3_presigned
    from botocore.auth import SigV4QueryAuth

    spec = _json_body(environ)

    def answer(status, body):
        data = json.dumps(body).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]

    try:
        token, model = spec.get("token", ""), spec.get("model", "")
        if not token.startswith(BEDROCK_KEY_PREFIX):
            raise Denied("the bearer token is not a Bedrock API key")
        try:
            raw = base64.b64decode(token[len(BEDROCK_KEY_PREFIX):], validate=True).decode()
        except Exception:
            raise Denied("the Bedrock API key is not base64")
        if not raw.endswith("&Version=1") or not raw.startswith(BEDROCK_KEY_HOST + "/?"):
            raise Denied("the Bedrock API key is not a signed request to bedrock.amazonaws.com of version 1")
        query = raw[len(BEDROCK_KEY_HOST + "/?"):-len("&Version=1")]
        params = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
        if params.get("Action") != "CallWithBearerToken" or params.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256":
            raise Denied("the Bedrock API key is not a SigV4-signed CallWithBearerToken")
        try:
            key, day, region, service, _ = params["X-Amz-Credential"].split("/")
            signed_at = datetime.datetime.strptime(params["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
            expires = int(params["X-Amz-Expires"])
        except (KeyError, ValueError):
            raise Denied("the Bedrock API key lacks its signature's parameters")
        principal = PRINCIPALS.get(key)
        if principal is None or service != "bedrock":
            raise Denied("The security token included in the request is invalid")
        now = time.time()
        if now > signed_at.timestamp() + expires or (principal.get("expires") is not None and now >= principal["expires"]):
            raise Denied("The security token included in the request is expired")
        if not s3_presigned.signature_matches(SigV4QueryAuth, "POST", f"https://{BEDROCK_KEY_HOST}/", query, {"host": BEDROCK_KEY_HOST}, principal["secret"]):
            raise Denied("The request signature we calculated does not match the signature you provided")
        account = principal.get("account", "123456789012")
        parts = model.split(".", 1)
        checks = [Check("bedrock:CallWithBearerToken", "*")]
        if len(parts) == 2 and len(parts[0]) <= 4 and "." in parts[1]:
            checks.append(Check("bedrock:InvokeModel", f"arn:aws:bedrock:{region}:{account}:inference-profile/{model}"))
            checks.append(Check("bedrock:InvokeModel", f"arn:aws:bedrock:{region}::foundation-model/{parts[1]}"))
        else:
            checks.append(Check("bedrock:InvokeModel", f"arn:aws:bedrock:{region}::foundation-model/{model}"))
        for check in checks:
            _authorize(principal, check, False, account)
    except Denied as denied:
        if DENIAL_LOG:
            with open(DENIAL_LOG, "a") as log:
                log.write(denied.message + "\n")
        return answer("403 Forbidden", {"message": denied.message})
    return answer("200 OK", {"principal": principal["session_arn"]})


def _missing_key_is_forbidden(app, environ, start_response, principal, check, via_endpoint, account):
    """S3 answers a missing key with 404 only to a principal allowed s3:ListBucket on the bucket."""
    status, headers, body = _served(app, environ)
    if status.startswith("404"):
        listing = Check("s3:ListBucket", check.resource_policy_of, {"s3:authType": check.context.get("s3:authType", "REST-HEADER")}, check.resource_policy_of)
        if not _allowed(principal, listing, via_endpoint, account):
            return _deny(
                start_response,
                "s3",
                f"User: {principal['session_arn']} is not authorized to perform: s3:ListBucket on resource: {check.resource_policy_of}"
                " (a missing key answers 403 to a principal without s3:ListBucket)",
            )
    start_response(status, headers)
    return [body]
