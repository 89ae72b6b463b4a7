# The `airflow` service of docker-compose.yaml: Apache Airflow's image with this provider installed from the
# build context (docker compose build; context = the repository root, see .dockerignore).

# Stage 1: build the provider's wheel. pip builds a source tree in place (build/, *.egg-info), which the
# Airflow image's non-root user could not do in a root-owned copy; a wheel needs no writable source.
FROM python:3.11.14-slim-bookworm AS wheel
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
COPY pyproject.toml README.md /src/
COPY airflow_provider_polar_mc /src/airflow_provider_polar_mc
RUN pip wheel --no-deps --wheel-dir /wheels /src

# Stage 2: install it the way the image's documentation says to add packages: as the image's `airflow`
# user (the image's default USER), naming apache-airflow at the image's own version so pip keeps it.
FROM apache/airflow:3.3.2-python3.11
COPY --from=wheel /wheels /tmp/polar-mc-wheels
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" /tmp/polar-mc-wheels/*.whl
