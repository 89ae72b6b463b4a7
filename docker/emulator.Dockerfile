# The `maxcompute` service of docker-compose.yaml: the local MaxCompute emulator (polar-mc-emulator) alone,
# without Airflow or the provider's other dependencies (build context = the repository root).
FROM python:3.11.14-slim-bookworm
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore PYTHONUNBUFFERED=1

# What the emulator imports: the `emulator` extra of pyproject.toml, at the versions the tests ran with,
# and crcmod-plus, whose C extension the Tunnel's CRC32C checksums use when present (~50x the pure
# Python fallback: uploads of large tables would otherwise spend seconds per block on checksums).
RUN pip install "duckdb==2.0.1" "pyarrow==26.0.1" "sqlglot==30.31.0" "crcmod-plus==2.3.6"

# The package itself without its dependencies (apache-airflow, pyodps, ... serve no emulator request).
COPY pyproject.toml README.md /tmp/polar-mc/
COPY airflow_provider_polar_mc /tmp/polar-mc/airflow_provider_polar_mc
RUN pip install --no-deps /tmp/polar-mc && rm -rf /tmp/polar-mc

# A non-root user owning the data directory (a new named volume mounted there takes over its owner).
RUN useradd --system --uid 10001 --home-dir /data --no-create-home emulator \
    && mkdir /data && chown emulator /data
USER emulator
WORKDIR /data
EXPOSE 8900
# docker-compose.yaml gives the command; these defaults serve `docker run -e POLAR_MC_EMULATOR_ACCESS_KEY=...`.
CMD ["polar-mc-emulator", "--host", "0.0.0.0", "--port", "8900", "--data-dir", "/data", "--project", "demo", "--access-id", "demo-id"]
