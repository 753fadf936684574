# syntax=docker/dockerfile:1
# One image for every modelyard process; the first argument picks the role:
#   docker run modelyard tenant | router | metering | inference --pool slm|llm | ingress | dashboard | simulator
# Build stage: uv installs the locked workspace (no dev group) into /app/.venv as regular wheels,
# so the runtime stage needs the virtual environment only, not the sources or uv.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
# The uv that wrote uv.lock; --frozen refuses to run if the lock is stale.
ARG UV_VERSION=0.13.9
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
ENV UV_PROJECT_ENVIRONMENT=/app/.venv \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy
WORKDIR /src
COPY pyproject.toml uv.lock ./
COPY libs/ libs/
COPY services/ services/
COPY apps/ apps/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable

FROM ${PYTHON_IMAGE} AS runtime
# A fixed numeric user, so Kubernetes can enforce runAsNonRoot without guessing.
RUN groupadd --system --gid 10001 modelyard \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin modelyard
COPY --from=build /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MODELYARD_OPS_PORT=9100 \
    MODELYARD_LOG_FORMAT=json
WORKDIR /app
USER 10001:10001
# tenant API, ingress, dashboard, simulator, and /healthz /readyz /metrics of the consumers.
EXPOSE 8080 8081 8082 8090 9100
ENTRYPOINT ["modelyard"]
CMD ["--help"]
