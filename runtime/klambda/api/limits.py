"""Lambda's limits and defaults, in one place.

Every bound that a manifest, a CLI flag or an API request is checked against lives here,
so that error messages, the CRD schemas (checked by a test) and the runtime agree.
"""

from __future__ import annotations

GROUP = "klambda.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

MEMORY_MIN_MB = 128
MEMORY_MAX_MB = 10240
MEMORY_DEFAULT_MB = 128
# Lambda gives one full vCPU at 1,769 MB and CPU in proportion below and above it.
MB_PER_VCPU = 1769

TIMEOUT_MIN_S = 1
TIMEOUT_MAX_S = 900
TIMEOUT_DEFAULT_S = 3

ENVIRONMENT_MAX_BYTES = 4096

# Lambda's ephemeral storage: the size of an environment's private /tmp.
EPHEMERAL_STORAGE_MIN_MB = 512
EPHEMERAL_STORAGE_MAX_MB = 10240
EPHEMERAL_STORAGE_DEFAULT_MB = 512
# Lambda's limit on the processes and threads of one environment.
PROCESS_LIMIT = 1024

RETRY_ATTEMPTS_MIN = 0
RETRY_ATTEMPTS_MAX = 2
RETRY_ATTEMPTS_DEFAULT = 2
MAX_EVENT_AGE_MIN_S = 60
MAX_EVENT_AGE_MAX_S = 21600
MAX_EVENT_AGE_DEFAULT_S = 21600

SYNC_PAYLOAD_MAX_BYTES = 6 * 1024 * 1024  # 6,291,456: request and response
ASYNC_PAYLOAD_MAX_BYTES = 256 * 1024

ACCOUNT_CONCURRENCY_DEFAULT = 1000
UNRESERVED_CONCURRENCY_MIN = 100
# Lambda's scaling rule: each function may gain up to 1,000 environments every 10 seconds
SCALE_UP_BURST_DEFAULT = 1000
SCALE_UP_PER_MINUTE_DEFAULT = 6000

RUNTIMES = (
    "python3.9",
    "python3.10",
    "python3.11",
    "python3.12",
    "python3.13",
    "provided",
    "provided.al2",
    "provided.al2023",
)

# Lambda's reserved environment variables: a function may not set these.
RESERVED_ENVIRONMENT = (
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
)

# Function names become parts of Kubernetes object names (Deployments, Services), so they
# follow the DNS-1035 label rules, with room left for the "-v<number>" suffixes.
FUNCTION_NAME_PATTERN = r"^[a-z]([-a-z0-9]{0,46}[a-z0-9])?$"
FUNCTION_NAME_MAX = 48
ALIAS_NAME_PATTERN = r"^(?!\d+$)[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?$"
HANDLER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\.[A-Za-z_][A-Za-z0-9_]*$"
ENV_NAME_PATTERN = r"^[a-zA-Z][a-zA-Z0-9_]*$"
SERVICE_ACCOUNT_PATTERN = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"
VERSION_PATTERN = r"^[1-9][0-9]{0,8}$"

LATEST = "$LATEST"

# Lambda's tags: on the function, not on its versions
TAGS_MAX = 50
TAG_KEY_MAX = 128
TAG_VALUE_MAX = 256
TAG_PATTERN = r"^[\w\s.:/=+@-]*$"

# Code uploaded through the API (CreateFunction, UpdateFunctionCode)
ZIP_MAX_BYTES = 50 * 1024 * 1024  # a .zip sent in the request
UNZIPPED_MAX_BYTES = 250 * 1024 * 1024  # its files, unpacked
S3_KEY_MAX = 1024  # an object key of the cluster's store (S3's limit)
RUNTIME_DEFAULT = "python3.11"  # an image function's runtime when none is given

# Lambda's throttle reasons (the `Reason` of a TooManyRequestsException)
RESERVED_LIMIT = "ReservedFunctionConcurrentInvocationLimitExceeded"
ACCOUNT_LIMIT = "ConcurrentInvocationLimitExceeded"
SCALE_UP_LIMIT = "FunctionInvocationRateLimitExceeded"

# File systems (EFS's role: a ReadWriteMany PVC, a host folder locally): Lambda allows one
FILE_SYSTEMS_MAX = 1
MOUNT_PATH_PATTERN = r"^/mnt/[a-zA-Z0-9_.-]{1,200}$"
CLAIM_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"

# Layers: at most this many per function, applied in order (a later one wins a conflict)
LAYERS_MAX = 5
LAYER_NAME_PATTERN = r"^[a-zA-Z0-9_-]{1,64}$"
# a function's reference to a layer version: NAME:VERSION, or Lambda's layer version ARN
LAYER_REF_PATTERN = (
    r"^(arn:aws:lambda:[a-z0-9-]+:[0-9]{12}:layer:)?[a-zA-Z0-9_-]{1,64}:[1-9][0-9]{0,8}$"
)
