"""S3's checks of pre-signed requests, which moto does not make (it serves any pre-signed URL and any
POST form): applied by moto_server.py to every request before moto sees it. The same checks of a
query-signed request to another service (SQS's query API: a warm slot's wake link, a
`ReceiveMessage` GET), answered as that service answers (AWS's common errors: 403
SignatureDoesNotMatch, 403 InvalidClientTokenId, 400 RequestExpired, as the query API's
ErrorResponse XML).

- A query-string-signed request (a pre-signed GET, PUT or DELETE: X-Amz-Algorithm, -Credential,
  -Date, -Expires, -SignedHeaders, -Signature in the query): the signature is recomputed (SigV4 with
  botocore's own signer) over the method, path, query and signed headers as received, with the
  secret of the access key; a link past its expiry is refused, as is an unknown access key.
- A browser-based upload (POST multipart/form-data with a policy): the policy's signature, its
  expiration, and every condition (bucket, key and other fields by eq / starts-with, content-length-
  range); every form field but file, policy, x-amz-signature and x-ignore-* must be named by a
  condition.

Answers are S3's: 403 AccessDenied ("Request has expired", "Invalid according to Policy: ..."), 403
SignatureDoesNotMatch, 403 InvalidAccessKeyId, 400 EntityTooLarge / EntityTooSmall, as S3's error XML.
"""

import base64
import datetime
import hashlib
import hmac
import io
import json
import os
from urllib.parse import parse_qs

from botocore.auth import S3SigV4QueryAuth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from werkzeug.formparser import parse_form_data

# Access key id -> secret of the credentials the tests and the local stack sign with
# (testenv::moto::Moto::sdk_env); more as JSON in TESTENV_S3_SECRETS.
SECRETS = {"testing": "testing", **json.loads(os.environ.get("TESTENV_S3_SECRETS", "{}"))}

# Access key id -> epoch seconds when its session's credentials expire (sts:AssumeRole sessions,
# registered by iam_authorize.py): a link signed with them stops working then, whatever its own
# expiry (S3: 400 ExpiredToken).
EXPIRES = {}

# The longest a query-string signature may be valid (SigV4: seven days).
MAX_EXPIRES = 7 * 24 * 3600


class Refused(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def _amz_date(value):
    return datetime.datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)


def _secret(access_key):
    secret = SECRETS.get(access_key)
    if secret is None:
        raise Refused(403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")
    expires = EXPIRES.get(access_key)
    if expires is not None and _now().timestamp() >= expires:
        raise Refused(400, "ExpiredToken", "The provided token has expired.")
    return secret


def _header(environ, name):
    if name == "host":
        return environ.get("HTTP_HOST", "")
    key = name.upper().replace("-", "_")
    return environ.get(key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key, "")


def check_query_signature(environ):
    raw_query = environ.get("QUERY_STRING", "")
    params = {k: v[0] for k, v in parse_qs(raw_query, keep_blank_values=True).items()}
    if params.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256":
        raise Refused(400, "AuthorizationQueryParametersError", "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"")
    try:
        access_key, day, region, service, _ = params["X-Amz-Credential"].split("/")
        signed_at = _amz_date(params["X-Amz-Date"])
        expires = int(params["X-Amz-Expires"])
        signed_headers = params["X-Amz-SignedHeaders"].split(";")
        signature = params["X-Amz-Signature"]
    except (KeyError, ValueError):
        raise Refused(400, "AuthorizationQueryParametersError", "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.")
    if not 1 <= expires <= MAX_EXPIRES:
        raise Refused(400, "AuthorizationQueryParametersError", "X-Amz-Expires must be less than a week (in seconds) that is; 604800 seconds")
    try:
        secret = _secret(access_key)
    except Refused as refused:
        if service == "s3":
            raise
        if refused.code == "InvalidAccessKeyId":
            raise Refused(403, "InvalidClientTokenId", "The security token included in the request is invalid.")
        raise Refused(400, "ExpiredToken", "The security token included in the request is expired")
    if _now() > signed_at + datetime.timedelta(seconds=expires):
        if service != "s3":
            raise Refused(400, "RequestExpired", "Request has expired.")
        raise Refused(403, "AccessDenied", "Request has expired")
    # Recompute over the request as received: the raw path and query, less the signature.
    raw_uri = environ.get("REQUEST_URI") or environ.get("RAW_URI") or environ.get("PATH_INFO", "/")
    path = raw_uri.split("?", 1)[0]
    headers = {h: _header(environ, h) for h in signed_headers}
    if service != "s3":
        # Another service's query API: the payload is hashed (S3 alone signs UNSIGNED-PAYLOAD).
        if not signature_matches(SigV4QueryAuth, environ["REQUEST_METHOD"], f"http://{headers.get('host', '')}{path}", raw_query, headers, secret):
            raise Refused(403, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.")
        return
    if not signature_matches(S3SigV4QueryAuth, environ["REQUEST_METHOD"], f"http://{headers.get('host', '')}{path}", raw_query, headers, secret):
        raise Refused(403, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method.")


def query_service(environ):
    """The service a query-signed request's credential scope names ("s3" when it names none)."""
    parts = parse_qs(environ.get("QUERY_STRING", "")).get("X-Amz-Credential", [""])[0].split("/")
    return parts[3] if len(parts) == 5 else "s3"


def signature_matches(auth_class, method, url, raw_query, headers, secret):
    """Whether a query-signed request's `X-Amz-Signature` is the one botocore's `auth_class`
    computes over it as received (`url` without its query, which is `raw_query`)."""
    params = {k: v[0] for k, v in parse_qs(raw_query, keep_blank_values=True).items()}
    access_key, day, region, service, _ = params["X-Amz-Credential"].split("/")
    query = "&".join(p for p in raw_query.split("&") if not p.startswith("X-Amz-Signature="))
    request = AWSRequest(method=method, url=f"{url}?{query}", headers=headers)
    request.context["timestamp"] = params["X-Amz-Date"]
    auth = auth_class(Credentials(access_key, secret), service, region)
    expected = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
    return day == params["X-Amz-Date"][:8] and hmac.compare_digest(expected, params.get("X-Amz-Signature", ""))


def _signing_key(secret, day, region, service):
    key = ("AWS4" + secret).encode()
    for part in (day, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def check_post_policy(environ, body):
    copy = dict(environ)
    copy["wsgi.input"] = io.BytesIO(body)
    copy["CONTENT_LENGTH"] = str(len(body))
    _, form, files = parse_form_data(copy)
    fields = {k.lower(): v for k, v in form.items()}
    if "policy" not in fields:
        return  # not a browser-based upload
    upload = files.get("file")
    size = len(upload.read()) if upload is not None else 0
    try:
        access_key, day, region, service, _ = fields["x-amz-credential"].split("/")
        signature = fields["x-amz-signature"]
    except (KeyError, ValueError):
        raise Refused(400, "InvalidArgument", "Bucket POST must contain a field named 'x-amz-credential' and 'x-amz-signature'")
    expected = hmac.new(_signing_key(_secret(access_key), day, region, service), fields["policy"].encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        raise Refused(403, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method.")
    policy = json.loads(base64.b64decode(fields["policy"]))
    expiration = datetime.datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
    if _now() > expiration:
        raise Refused(403, "AccessDenied", "Invalid according to Policy: Policy expired.")
    # The bucket is the path's first segment (path-style) or the host's first label.
    path = environ.get("PATH_INFO", "/").strip("/")
    fields.setdefault("bucket", path.split("/")[0] if path else environ.get("HTTP_HOST", "").split(".")[0])
    named = {"bucket"}
    for condition in policy.get("conditions", []):
        if isinstance(condition, dict):
            (name, value), = condition.items()
            op, name = "eq", name.lower()
        elif condition[0] == "content-length-range":
            low, high = int(condition[1]), int(condition[2])
            if size > high:
                raise Refused(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size")
            if size < low:
                raise Refused(400, "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed size")
            continue
        else:
            op, name, value = condition[0].lower(), condition[1].lstrip("$").lower(), condition[2]
        named.add(name)
        got = fields.get(name)
        ok = got is not None and (got == value if op == "eq" else got.startswith(value))
        if not ok:
            raise Refused(403, "AccessDenied", f"Invalid according to Policy: Policy Condition failed: {json.dumps(condition)}")
    extra = sorted(k for k in fields if k not in named and k not in ("policy", "x-amz-signature", "file") and not k.startswith("x-ignore-"))
    if extra:
        raise Refused(403, "AccessDenied", f"Invalid according to Policy: Extra input fields: {', '.join(extra)}")


def _error(start_response, refused, service="s3"):
    status = f"{refused.status} {'Forbidden' if refused.status == 403 else 'Bad Request'}"
    if service != "s3":
        body = (
            '<?xml version="1.0"?>\n'
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{refused.code}</Code><Message>{refused.message}</Message></Error><RequestId>testenv</RequestId></ErrorResponse>"
        ).encode()
        start_response(status, [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))])
        return [body]
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{refused.code}</Code><Message>{refused.message}</Message><RequestId>testenv</RequestId></Error>"
    ).encode()
    start_response(f"{refused.status} {'Forbidden' if refused.status == 403 else 'Bad Request'}", [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
    return [body]


def checked(app):
    """`app` (moto's WSGI application) behind S3's checks of pre-signed requests."""

    def serve(environ, start_response):
        service = "s3"
        try:
            query = environ.get("QUERY_STRING", "")
            if "X-Amz-Signature=" in query and "X-Amz-Credential=" in query:
                service = query_service(environ)
                check_query_signature(environ)
            elif environ.get("REQUEST_METHOD") == "POST" and environ.get("CONTENT_TYPE", "").startswith("multipart/form-data"):
                length = int(environ.get("CONTENT_LENGTH") or 0)
                body = environ["wsgi.input"].read(length)
                environ["wsgi.input"] = io.BytesIO(body)
                check_post_policy(environ, body)
                environ["wsgi.input"] = io.BytesIO(body)
        except Refused as refused:
            return _error(start_response, refused, service)
        return app(environ, start_response)

    return serve
