"""docker-compose.yaml checked against the code, since no machine here runs a Docker engine.

- every file it names exists (build contexts, Dockerfiles, what they COPY, bind mounts), and
  .dockerignore sends what the Dockerfiles copy and not .git/.venv;
- every image, in the file and in the Dockerfiles' FROM lines, is pinned to an exact version;
- every service has a healthcheck and waits for its dependencies to be healthy;
- the emulator's image installs what the emulator imports and no Airflow; its command line is accepted
  by the emulator's own argument parser, and its healthcheck command passes against a running emulator;
- the Airflow image installs the provider as the image's docs require (no editable install);
- the connection documents parse into the hooks' connection types and point at the services;
- a private MariaDB started with the `source` service's flags and seeded with its SQL passes the real
  precheck (``polar-mc precheck`` over the example spec, connections built from the compose file's own
  documents), and the seeded account's minimal grants suffice for coordinates, the heartbeat and reading
  the binary log.
"""

from __future__ import annotations

import ast
import json
import re
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from urllib.parse import urlsplit

import pymysql
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yaml"
SOURCE, EMULATOR, AIRFLOW = "source", "maxcompute", "airflow"
DAGS_IN_CONTAINER = "/opt/airflow/dags"

_VARIABLE = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")
# repository[:tag][@digest]; a tag is pinned when it starts with a full x.y.z version.
_IMAGE = re.compile(
    r"^(?P<repo>[a-z0-9][a-z0-9._/-]*)(?::(?P<tag>[\w][\w.-]*))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?$"
)
_EXACT_TAG = re.compile(r"^v?\d+\.\d+\.\d+(?:[-.][\w.-]+)?$")


# --- reading the compose file and the Dockerfiles ----------------------------------------------------


def load_compose() -> dict:
    """The compose file with ${VAR:-default} interpolated from the defaults (what a plain `up` uses)."""
    text = COMPOSE_FILE.read_text()
    return yaml.safe_load(_VARIABLE.sub(lambda m: m.group(2) or "", text))


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_compose()


def service(compose: dict, name: str) -> dict:
    assert name in compose["services"], f"docker-compose.yaml has no service {name!r}"
    return compose["services"][name]


def environment(svc: dict) -> dict[str, str]:
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def command(svc: dict) -> list[str]:
    cmd = svc.get("command")
    return shlex.split(cmd) if isinstance(cmd, str) else [str(a) for a in cmd or []]


def bind_mounts(svc: dict) -> list[tuple[Path, str]]:
    """(host path, container path) of each bind mount (short syntax ``./src:/dst[:ro]`` or long syntax)."""
    mounts = []
    for volume in svc.get("volumes") or []:
        if isinstance(volume, dict):
            if volume.get("type") == "bind":
                mounts.append((ROOT / volume["source"], volume["target"]))
            continue
        source, _, rest = volume.partition(":")
        if source.startswith((".", "/", "~")):
            mounts.append(((ROOT / source).resolve(), rest.split(":")[0]))
    return mounts


def named_volumes(svc: dict) -> list[tuple[str, str]]:
    named = []
    for volume in svc.get("volumes") or []:
        if isinstance(volume, dict):
            if volume.get("type") == "volume":
                named.append((volume["source"], volume["target"]))
            continue
        source, _, rest = volume.partition(":")
        if rest and not source.startswith((".", "/", "~")):
            named.append((source, rest.split(":")[0]))
    return named


def container_ports(svc: dict) -> set[int]:
    ports = set()
    for port in svc.get("ports") or []:
        ports.add(
            int(port["target"]) if isinstance(port, dict) else int(str(port).rsplit(":", 1)[-1].split("/")[0])
        )
    return ports


def build_paths(svc: dict) -> tuple[Path, Path]:
    build = svc["build"]
    context = ROOT / (build if isinstance(build, str) else build.get("context", "."))
    dockerfile = context / (
        build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else "Dockerfile"
    )
    return context, dockerfile


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    lines = [line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    instructions = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, args = line.strip().partition(" ")
            instructions.append((keyword.upper(), args.strip()))
    return instructions


def pip_installs(path: Path) -> list[list[str]]:
    """The arguments of every ``pip install`` in the Dockerfile's RUN instructions."""
    installs = []
    for keyword, args in dockerfile_instructions(path):
        if keyword != "RUN":
            continue
        for part in re.split(r"&&|;", args):
            words = shlex.split(part)
            for i in range(len(words) - 1):
                if words[i].endswith("pip") and words[i + 1] == "install":
                    installs.append(words[i + 2 :])
    return installs


def copy_sources(path: Path) -> list[str]:
    """Sources of COPY/ADD from the build context (not ``--from`` another stage)."""
    sources = []
    for keyword, args in dockerfile_instructions(path):
        if keyword in ("COPY", "ADD"):
            words = shlex.split(args)
            if any(w.startswith("--from") for w in words):
                continue
            sources += [w for w in words if not w.startswith("--")][:-1]
    return sources


def built_services(compose: dict) -> dict[str, tuple[Path, Path]]:
    return {name: build_paths(svc) for name, svc in compose["services"].items() if "build" in svc}


def connection_documents(compose: dict) -> dict[str, dict]:
    """conn_id -> the JSON connection document of each AIRFLOW_CONN_* of the airflow service."""
    docs = {}
    for key, value in environment(service(compose, AIRFLOW)).items():
        if key.startswith("AIRFLOW_CONN_"):
            docs[key[len("AIRFLOW_CONN_") :].lower()] = json.loads(value)
    return docs


def source_flags(compose: dict) -> dict[str, str | None]:
    """The MariaDB service's command-line options, names normalised to dashes."""
    flags: dict[str, str | None] = {}
    for arg in command(service(compose, SOURCE)):
        assert arg.startswith("--"), f"source command: {arg!r} is not an option (the image runs mariadbd)"
        name, eq, value = arg[2:].partition("=")
        flags[name.replace("_", "-")] = value if eq else None
    return flags


def example_specs(compose: dict) -> list[Path]:
    """The specs Airflow will load: migrations/*.yaml in the folder mounted as its DAGs folder."""
    dags = [host for host, target in bind_mounts(service(compose, AIRFLOW)) if target == DAGS_IN_CONTAINER]
    assert dags, f"the airflow service mounts no DAGs folder at {DAGS_IN_CONTAINER}"
    specs = sorted((dags[0] / "migrations").glob("*.yaml"))
    assert specs, f"no specs in {dags[0] / 'migrations'}"
    return specs


def seed_files(compose: dict) -> list[Path]:
    seeds = [
        host
        for host, target in bind_mounts(service(compose, SOURCE))
        if target == "/docker-entrypoint-initdb.d"
    ]
    assert seeds, (
        "the source service mounts nothing at /docker-entrypoint-initdb.d: the spec's databases would not exist"
    )
    return sorted(seeds[0].iterdir())  # the image runs them in name order


def seeded_account(compose: dict) -> tuple[str, str]:
    """(user, password) of the CREATE USER in the seed SQL."""
    accounts = []
    for path in seed_files(compose):
        accounts += re.findall(
            r"CREATE USER '([^']+)'@'[^']+' IDENTIFIED BY '([^']*)'", path.read_text(), re.IGNORECASE
        )
    assert len(accounts) == 1, f"expected one CREATE USER in the seed SQL, found {accounts}"
    return accounts[0]


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


# --- files, images, healthchecks -------------------------------------------------------------------------


def test_every_referenced_file_exists(compose):
    for name, (context, dockerfile) in built_services(compose).items():
        assert context.is_dir(), f"{name}: build context {context} is missing"
        assert dockerfile.is_file(), f"{name}: {dockerfile} is missing"
        for source in copy_sources(dockerfile):
            assert (context / source).exists(), (
                f"{dockerfile.name} copies {source}, which is not in {context}"
            )
    declared = set(compose.get("volumes") or {})
    for name, svc in compose["services"].items():
        for host, target in bind_mounts(svc):
            assert host.exists(), f"{name}: bind mount {host} -> {target} is missing"
        for volume, target in named_volumes(svc):
            assert volume in declared, (
                f"{name}: volume {volume!r} (-> {target}) is not declared under volumes:"
            )
    # The MariaDB image runs *.sql, *.sql.gz/.xz/.zst and *.sh from its init folder and ignores the rest.
    assert all(
        p.name.endswith((".sql", ".sql.gz", ".sql.xz", ".sql.zst", ".sh")) for p in seed_files(compose)
    )


def _images(compose: dict) -> list[tuple[str, str]]:
    """(where, image) of every image the stack pulls: compose ``image:`` and Dockerfile FROM lines."""
    images = [
        (f"service {n}", s["image"])
        for n, s in compose["services"].items()
        if "image" in s and "build" not in s
    ]
    for name, (_, dockerfile) in built_services(compose).items():
        stages: set[str] = set()
        for keyword, args in dockerfile_instructions(dockerfile):
            if keyword == "FROM":
                words = [w for w in args.split() if not w.startswith("--")]
                if words[0] not in stages:
                    images.append((f"{dockerfile.name} ({name})", words[0]))
                if len(words) == 3 and words[1].upper() == "AS":
                    stages.add(words[2])
    return images


def test_every_image_is_pinned_to_an_exact_version(compose):
    images = _images(compose)
    assert {where for where, _ in images} >= {f"service {SOURCE}"}
    for where, image in images:
        m = _IMAGE.match(image)
        assert m, f"{where}: cannot read image reference {image!r}"
        tag, digest = m.group("tag"), m.group("digest")
        assert digest or (tag and tag != "latest" and _EXACT_TAG.match(tag)), (
            f"{where}: {image!r} floats; pin an exact version (e.g. mariadb:10.11.18, python:3.11.14-slim-bookworm)"
        )
    assert not any(svc.get("pull_policy") == "always" for svc in compose["services"].values())


def test_every_service_is_healthchecked_and_dependencies_wait_for_health(compose):
    services = compose["services"]
    for name, svc in services.items():
        check = svc.get("healthcheck") or {}
        test = check.get("test")
        assert test and not check.get("disable") and test != ["NONE"], f"{name} has no healthcheck"
        assert isinstance(test, list) and test[0] in ("CMD", "CMD-SHELL"), (
            f"{name}: healthcheck test {test!r}"
        )
        if test[0] == "CMD" and test[1] == "python" and test[2] == "-c":
            compile(test[3], f"<{name} healthcheck>", "exec")
        depends = svc.get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: depends_on must give conditions (service_healthy)"
        for dependency, condition in depends.items():
            assert dependency in services, f"{name} depends on unknown service {dependency!r}"
            assert condition.get("condition") == "service_healthy", (
                f"{name} must wait until {dependency} is healthy"
            )
    assert set(service(compose, AIRFLOW)["depends_on"]) == {SOURCE, EMULATOR}


# --- the Dockerfiles -----------------------------------------------------------------------------------------


def _dockerignore_excludes(path: str, patterns: list[tuple[bool, re.Pattern]]) -> bool:
    """Whether .dockerignore leaves ``path`` out (a pattern matching a parent directory matches too; the
    last matching pattern decides, ``!`` re-includes), as Docker's pattern matcher does."""
    parts = path.split("/")
    excluded = False
    for negated, regex in patterns:
        if any(regex.match("/".join(parts[: i + 1])) for i in range(len(parts))):
            excluded = not negated
    return excluded


def _dockerignore_patterns() -> list[tuple[bool, re.Pattern]]:
    patterns = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        glob = line.lstrip("!").strip("/")
        regex = ""
        i = 0
        while i < len(glob):
            if glob.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif glob.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif glob[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif glob[i] == "?":
                regex, i = regex + "[^/]", i + 1
            elif glob[i] == "[":
                end = glob.index("]", i)
                regex, i = regex + glob[i : end + 1], end + 1
            else:
                regex, i = regex + re.escape(glob[i]), i + 1
        patterns.append((negated, re.compile(f"^{regex}$")))
    return patterns


def test_dockerignore_sends_what_the_dockerfiles_copy_and_not_git_or_venv(compose):
    patterns = _dockerignore_patterns()
    for left_out in (".git/HEAD", ".venv/bin/python", "airflow_provider_polar_mc.egg-info/PKG-INFO",
                     "airflow_provider_polar_mc/emulator/__pycache__/cli.cpython-311.pyc", ".hypothesis/x"):  # fmt: skip
        assert _dockerignore_excludes(left_out, patterns), f".dockerignore sends {left_out}"
    for name, (context, dockerfile) in built_services(compose).items():
        assert context == ROOT, (
            f"{name}: .dockerignore at the repository root applies to context {context} only"
        )
        for source in copy_sources(dockerfile):
            files = [context / source] if (context / source).is_file() else (context / source).rglob("*.py")
            for file in files:
                relative = file.relative_to(context).as_posix()
                assert not _dockerignore_excludes(relative, patterns), (
                    f"{dockerfile.name} copies {relative}, .dockerignore drops it"
                )


def _third_party_imports(package: Path) -> tuple[set[str], set[str]]:
    """(required, optional) top-level modules imported by a package's code that are neither the standard
    library nor the package itself; optional ones are imported under ``try: ... except ImportError``."""
    required: set[str] = set()
    optional: set[str] = set()
    for path in package.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        guarded: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Try) and any(
                isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError")
                for h in node.handlers
            ):
                guarded |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                depth = len(path.relative_to(package).parts)
                assert node.level <= depth, f"{path}: imports from the package outside the emulator"
                names = [node.module] if node.level == 0 and node.module else []
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top == "__future__":
                    continue
                assert not name.startswith("airflow_provider_polar_mc") or name.startswith(
                    "airflow_provider_polar_mc.emulator"
                ), f"{path}: the emulator imports {name}, which its image may not have"
                if top != "airflow_provider_polar_mc":
                    (optional if id(node) in guarded else required).add(top)
    return required, optional


def test_emulator_image_installs_what_the_emulator_imports_and_no_airflow(compose):
    _, dockerfile = build_paths(service(compose, EMULATOR))
    text = "\n".join(args for keyword, args in dockerfile_instructions(dockerfile) if keyword == "RUN")
    assert "apache-airflow" not in text and "pyodps" not in text
    pins: dict[str, SpecifierSet] = {}
    local_installs = 0
    for args in pip_installs(dockerfile):
        targets = [a for a in args if not a.startswith("-")]
        local = [a for a in targets if a.startswith(("/", "."))]
        if local:
            local_installs += 1
            assert "--no-deps" in args, (
                f"{dockerfile.name}: `pip install {' '.join(args)}` would pull in Airflow"
            )
            assert not any("[" in a for a in local), "an extra of the package would pull in its dependencies"
        for requirement in map(Requirement, (a for a in targets if a not in local)):
            assert str(requirement.specifier).startswith("=="), f"{requirement} is not pinned to one version"
            pins[canonicalize_name(requirement.name)] = requirement.specifier
    assert local_installs == 1, f"{dockerfile.name} should install the package itself once (--no-deps)"

    # Every package the emulator imports (not behind `except ImportError`) is installed ...
    required, _ = _third_party_imports(ROOT / "airflow_provider_polar_mc" / "emulator")
    distributions = metadata.packages_distributions()
    for module in sorted(required):
        names = {canonicalize_name(d) for d in distributions.get(module, [module])}
        assert names & set(pins), f"the emulator imports {module}, which {dockerfile.name} does not install"
    # ... and so is every package of the `emulator` extra, at a version the extra allows.
    for spec in _pyproject()["project"]["optional-dependencies"]["emulator"]:
        requirement = Requirement(spec)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{dockerfile.name} does not install {name} (extra `emulator`)"
        version = str(pins[name]).removeprefix("==")
        assert requirement.specifier.contains(version), (
            f"{name}=={version} is outside the extra's {requirement.specifier}"
        )


def test_airflow_image_installs_the_provider_as_its_docs_require(compose):
    svc = service(compose, AIRFLOW)
    _, dockerfile = build_paths(svc)
    instructions = dockerfile_instructions(dockerfile)
    final_from = [args for keyword, args in instructions if keyword == "FROM"][-1].split()[0]
    m = re.match(r"apache/airflow:(\d+\.\d+\.\d+)-python(\d+\.\d+)$", final_from)
    assert m, (
        f"{dockerfile.name}: the final stage should be apache/airflow:<version>-python<x.y>, not {final_from}"
    )
    airflow_requirement = next(
        Requirement(d)
        for d in _pyproject()["project"]["dependencies"]
        if Requirement(d).name == "apache-airflow"
    )
    assert airflow_requirement.specifier.contains(m.group(1)), (
        f"Airflow {m.group(1)} is outside {airflow_requirement}"
    )
    final_stage = instructions[max(i for i, (k, _) in enumerate(instructions) if k == "FROM") :]
    users = [args for keyword, args in final_stage if keyword == "USER"]
    assert not users or users[-1] not in ("root", "0"), "pip must run as the image's airflow user"
    installs = [args for args in pip_installs(dockerfile) if any("polar" in a for a in args)]
    assert installs, f"{dockerfile.name} does not install the provider"
    for args in installs:
        assert "-e" not in args and "--editable" not in args, (
            "no editable install: the image must carry the package"
        )
        assert "apache-airflow==${AIRFLOW_VERSION}" in args, (
            "name apache-airflow==${AIRFLOW_VERSION}: pip keeps the image's Airflow"
        )
    assert "_PIP_ADDITIONAL_REQUIREMENTS" not in environment(svc), "install at build time, not at every start"
    assert not [t for h, t in bind_mounts(svc) if h == ROOT], (
        "the source tree must not be mounted over the package"
    )


# --- the emulator service ------------------------------------------------------------------------------------


def test_emulator_command_is_accepted_by_its_argument_parser(compose):
    from airflow_provider_polar_mc.emulator.cli import ACCESS_KEY_ENV_VAR, build_parser

    svc = service(compose, EMULATOR)
    argv = command(svc)
    assert argv[0] in _pyproject()["project"]["scripts"], f"{argv[0]} is not one of the package's commands"
    args = build_parser().parse_args(argv[1:])
    assert args.host == "0.0.0.0", "bind all interfaces: other containers connect over the compose network"
    assert args.port in container_ports(svc)
    assert str(args.data_dir) in {target for _, target in named_volumes(svc)}, (
        "the data dir should be a volume"
    )
    assert args.access_key or environment(svc).get(ACCESS_KEY_ENV_VAR), "the emulator needs its access key"
    assert f":{args.port}/" in svc["healthcheck"]["test"][-1]


def test_connection_documents_parse_into_the_hooks_connection_types(compose, monkeypatch):
    from airflow.providers.alibaba.cloud.hooks.maxcompute import MaxComputeHook

    from airflow_provider_polar_mc.emulator.cli import ACCESS_KEY_ENV_VAR, build_parser
    from airflow_provider_polar_mc.hooks.polardb import PolarDBMySqlHook
    from airflow_provider_polar_mc.spec import MigrationSpec

    documents = connection_documents(compose)
    for key, value in environment(service(compose, AIRFLOW)).items():
        if key.startswith("AIRFLOW_CONN_"):
            monkeypatch.setenv(key, value)
    for spec_path in example_specs(compose):
        spec = MigrationSpec.from_yaml(spec_path)
        assert spec.source.conn_id in documents, (
            f"{spec_path.name}: no AIRFLOW_CONN_{spec.source.conn_id.upper()}"
        )
        assert spec.destination.conn_id in documents, (
            f"{spec_path.name}: no AIRFLOW_CONN_{spec.destination.conn_id.upper()}"
        )

        source = PolarDBMySqlHook(polardb_conn_id=spec.source.conn_id)
        assert source.get_connection(spec.source.conn_id).conn_type == PolarDBMySqlHook.conn_type
        endpoint = source.get_endpoint()
        mariadb_port = int(source_flags(compose).get("port") or 3306)
        assert (endpoint.host, endpoint.port) == (SOURCE, mariadb_port)
        assert mariadb_port in container_ports(service(compose, SOURCE))
        assert (endpoint.user, endpoint.password) == seeded_account(compose), (
            "the connection uses the seeded account"
        )

        mc = MaxComputeHook(maxcompute_conn_id=spec.destination.conn_id)
        assert mc.get_connection(spec.destination.conn_id).conn_type == MaxComputeHook.conn_type
        emulator_svc = service(compose, EMULATOR)
        emulator_args = build_parser().parse_args(command(emulator_svc)[1:])
        url = urlsplit(mc.endpoint)
        assert (url.scheme, url.hostname, url.port, url.path) == (
            "http",
            EMULATOR,
            emulator_args.port,
            "/api",
        )
        assert (spec.destination.project or mc.project) in emulator_args.project
        credentials = mc.get_access_key_credential()
        assert credentials.access_key_id == emulator_args.access_id
        assert credentials.access_key_secret == (
            emulator_args.access_key or environment(emulator_svc)[ACCESS_KEY_ENV_VAR]
        )


# --- the source: flags and seed through the real precheck ------------------------------------------------


def _server_config(flags: dict[str, str | None]) -> dict:
    """The sandbox server's configuration for the compose flags. The sandbox always sets its own binlog
    format/image/metadata and server id, so the compose file must set them explicitly (a missing one
    would be masked here and left at MariaDB's default there)."""
    flags = dict(flags)
    for required in ("log-bin", "binlog-format", "binlog-row-image", "binlog-row-metadata", "server-id"):
        assert required in flags, f"the source command should set --{required} explicitly"
    flags.pop("log-bin")  # its value is a file name inside the container's datadir
    config = {
        "log_bin": True,
        "binlog_format": flags.pop("binlog-format"),
        "binlog_row_image": flags.pop("binlog-row-image"),
        "binlog_row_metadata": flags.pop("binlog-row-metadata"),
        "server_id": int(flags.pop("server-id") or 0),
    }
    if "binlog-expire-logs-seconds" in flags:
        config["binlog_expire_seconds"] = int(flags.pop("binlog-expire-logs-seconds") or 0)
    valueless = [name for name, value in flags.items() if value is None]
    assert not valueless, f"teach this test the options {valueless}"
    config["extra"] = flags  # everything else as given (after the sandbox's own options, so it wins)
    return config


def _run_seed(server, path: Path) -> None:
    """Run one seed file the way the image's entrypoint does (the command-line client), as root."""
    client = server.client_binary
    if client:
        result = subprocess.run(
            [client, "--no-defaults", "--protocol=tcp", f"--host={server.host}", f"--port={server.port}", "--user=root"],
            stdin=path.open("rb"), capture_output=True, check=False,
        )  # fmt: skip
        assert result.returncode == 0, f"{path.name}: {result.stderr.decode(errors='replace')}"
        return
    conn = server.connect(client_flag=pymysql.constants.CLIENT.MULTI_STATEMENTS)
    try:
        with conn.cursor() as cur:
            cur.execute(path.read_text())
            while cur.nextset():
                pass
    finally:
        conn.close()


@pytest.mark.integration
def test_source_flags_and_seed_pass_the_precheck_with_minimal_grants(
    compose, mysql_server_factory, tmp_path, monkeypatch, capsys
):
    from airflow_provider_polar_mc.cli import main as polar_mc
    from airflow_provider_polar_mc.core.binlog.coordinates import binary_logs, capture
    from airflow_provider_polar_mc.core.binlog.reader import read_changes
    from airflow_provider_polar_mc.core.interval_capture import write_heartbeat
    from airflow_provider_polar_mc.core.planning import describe_table_schema
    from airflow_provider_polar_mc.core.precheck import granted_global_privileges
    from airflow_provider_polar_mc.core.selection import select_tables
    from airflow_provider_polar_mc.core.source.catalog import list_tables
    from airflow_provider_polar_mc.emulator.cli import ACCESS_KEY_ENV_VAR, build_parser
    from airflow_provider_polar_mc.hooks import resolve
    from airflow_provider_polar_mc.sandbox.emulator import EmulatorProcess
    from airflow_provider_polar_mc.spec import MigrationSpec

    flags = source_flags(compose)
    assert flags.get("default-time-zone") in ("+00:00", "UTC"), "the source should run in UTC"
    assert environment(service(compose, SOURCE)).get("TZ") == "UTC"
    server = mysql_server_factory(**_server_config(flags))
    for path in seed_files(compose):
        _run_seed(server, path)

    # The emulator as the maxcompute service runs it (its project, access id and key), on a free port.
    emulator_svc = service(compose, EMULATOR)
    emulator_args = build_parser().parse_args(command(emulator_svc)[1:])
    emu = EmulatorProcess(
        tmp_path / "mc", project=emulator_args.project[0], access_id=emulator_args.access_id
    )
    emu.access_key = emulator_args.access_key or environment(emulator_svc)[ACCESS_KEY_ENV_VAR]
    emu.start()
    try:
        # The service's healthcheck command passes against it.
        health = service(compose, EMULATOR)["healthcheck"]["test"]
        probe = health[3].replace(f":{emulator_args.port}/", f":{emu.port}/")
        assert subprocess.run([sys.executable, "-c", probe], timeout=30, check=False).returncode == 0

        # The compose file's own connection documents, pointed at the private server and emulator.
        documents = connection_documents(compose)
        for conn_id, doc in documents.items():
            if doc["conn_type"] == "polardb_mysql":
                doc = {**doc, "host": server.host, "port": server.port}
            elif doc["conn_type"] == "maxcompute":
                assert urlsplit(doc["extra"]["endpoint"]).path == urlsplit(emu.endpoint).path
                doc = {**doc, "extra": {**doc["extra"], "endpoint": emu.endpoint}}
            monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(doc))

        for spec_path in example_specs(compose):
            capsys.readouterr()
            code = polar_mc(["precheck", "--spec", str(spec_path), "--json"])
            report = json.loads(capsys.readouterr().out)
            not_passed = [r for r in report["results"] if r["status"] != "passed"]
            assert code == 0 and report["passed"] and not not_passed, json.dumps(not_passed, indent=2)
            ran = {r["check_id"] for r in report["results"]}
            assert {"source_objects", "source_select_privileges", "source_replication_privileges", "binlog_format",
                    "binlog_row_image", "binlog_row_metadata", "binlog_retention", "primary_key",
                    "filter_conditions", "column_mapping", "destination_conflicts"} <= ran  # fmt: skip

            # Every objects[] entry selects something, and the account's grants are the minimal ones.
            spec = MigrationSpec.from_yaml(spec_path)
            endpoint = resolve.source_endpoint(spec)
            conn = endpoint.connect()
            try:
                tables = {db: list_tables(conn, db) for db in spec.source.databases}
                selections = {s.source_name: s for s in select_tables(spec, tables)}
                for entry in spec.objects:
                    assert any(name.startswith(entry.database + ".") for name in selections), entry
                granted = granted_global_privileges(conn)
                assert granted <= {"REPLICATION SLAVE", "BINLOG MONITOR", "REPLICATION CLIENT", "USAGE"}, (
                    granted
                )

                # Coordinates, the heartbeat and the binary log work with those grants.
                start = capture(conn)
                assert binary_logs(conn)
                filtered = [name for name, s in selections.items() if s.filter]
                key = (filtered or list(selections))[0]
                database, table = key.split(".", 1)
                schema = describe_table_schema(conn, database, table)
                rows = server.execute(f"SELECT COUNT(*) FROM `{database}`.`{table}`")[0][0]
                kept = server.execute(
                    f"SELECT COUNT(*) FROM `{database}`.`{table}` WHERE ({selections[key].filter or 'TRUE'})"
                )[0][0]
                if filtered:
                    assert 0 < kept < rows, f"{key}: the seed should have rows on both sides of the filter"
                server.execute(f"DELETE FROM `{database}`.`{table}`")
                if spec.heartbeat.enabled:  # the provider's one write, in a writable session of its own
                    with endpoint.session(writable=True) as writer:
                        write_heartbeat(
                            writer, spec.heartbeat_database, spec.heartbeat.table, spec.heartbeat.interval_seconds
                        )
                end = capture(conn)
                changes = read_changes(endpoint, start, end, {key: schema}, {key: selections[key]}, spec)
                # One delete per row the filter selects; the others never were in the replica.
                assert changes.tables[key].rows.num_rows == kept
            finally:
                conn.close()
    finally:
        emu.stop()
