"""The MaxCompute REST API (``/api``): projects, tables, partitions and SQL instances.

Each handler returns the document pyodps parses for that call (see ``odps/models``). Catalog
changes (create/drop table, add/drop partition, add columns) arrive as SQL instances, as pyodps
sends them; this module only reads the catalog directly. Paths here are relative to the mount
point (``/projects/...``); authentication has already happened.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass

from . import render
from .catalog import InvalidName, PartitionSpec, TableMeta, parse_partition_spec
from .door import PROJECT_NAME
from .errors import EmulatorError
from .http import Request, Response
from .instances import SUCCESS, TERMINATED, InstanceManager, SqlInstance, result_csv, result_descriptor
from .render import Raw, cdata, children, element
from .storage import (
    InvalidArgument,
    NoSuchPartition,
    NoSuchTable,
    PartitionExists,
    PartitionInfo,
    Storage,
    StorageError,
    TableExists,
)

Handler = Callable[[Request, dict[str, str]], Response]

# Page size of table/partition listings (pyodps follows the Marker).
PAGE_SIZE = 1000
# How long ``GET instance?instancestatus`` (pyodps's blocking status poll) waits for the end.
BLOCKING_STATUS_WAIT_S = 5.0
# Rough bytes per value used for the reported table size (MaxCompute reports compressed bytes anyway).
_VALUE_BYTES = {"BIGINT": 8, "INT": 4, "SMALLINT": 2, "TINYINT": 1, "BOOLEAN": 1, "FLOAT": 4, "DOUBLE": 8, "DATE": 4}


def storage_error(exc: StorageError | InvalidName) -> EmulatorError:
    """The REST error for a storage failure."""
    if isinstance(exc, NoSuchTable):
        return EmulatorError(404, "NoSuchObject", str(exc))
    if isinstance(exc, NoSuchPartition):
        return EmulatorError(404, "NoSuchPartition", str(exc))
    if isinstance(exc, (TableExists, PartitionExists)):
        return EmulatorError(409, "ObjectAlreadyExists", str(exc))
    if isinstance(exc, (InvalidArgument, InvalidName)):
        return EmulatorError(400, "InvalidArgument", str(exc))
    return EmulatorError(500, "InternalServerError", str(exc))


class Router:
    """Maps (method, path template) to handlers; 404 for unknown paths, 405 for a wrong method."""

    def __init__(self) -> None:
        self._routes: list[tuple[re.Pattern[str], dict[str, Handler]]] = []

    def add(self, method: str, template: str, handler: Handler) -> None:
        pattern = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template) + "/?$")
        for pat, methods in self._routes:
            if pat.pattern == pattern.pattern:
                methods[method] = handler
                return
        self._routes.append((pattern, {method: handler}))

    def dispatch(self, req: Request) -> Response:
        for pattern, methods in self._routes:
            m = pattern.match(req.path)
            if m is None:
                continue
            handler = methods.get(req.method)
            if handler is None:
                raise EmulatorError(
                    405, "MethodNotAllowed", f"{req.method} is not allowed on {req.path}; use {'/'.join(sorted(methods))}"
                )
            return handler(req, m.groupdict())
        raise EmulatorError(404, "NoSuchObject", f"no such resource: {req.method} {req.path}")


def unsupported(req: Request, what: str) -> EmulatorError:
    """A loud failure for API calls the emulator does not implement."""
    query = "&".join(k for k in req.query if k not in ("curr_project", "curr_schema"))
    call = f"{req.method} {req.path}" + (f"?{query}" if query else "")
    return EmulatorError(501, "NotImplemented", f"the MaxCompute emulator does not implement {what} ({call})")


@dataclass
class RestConfig:
    projects: tuple[str, ...]
    owner: str  # e.g. ALIYUN$<access id>, reported as the owner of everything
    tunnel_mount: str = "/tunnel"  # where the Tunnel API lives on this server
    created_at: float = 0.0


class RestApi:
    """Handlers of the REST API."""

    def __init__(self, storage: Storage, instances: InstanceManager, config: RestConfig):
        self.storage = storage
        self.instances = instances
        self.config = config
        r = self.router = Router()
        r.add("GET", "/logview/host", self.logview_host)
        r.add("GET", "/tenants", self.tenant)
        r.add("GET", "/projects", self.list_projects)
        r.add("GET", "/projects/{project}", self.get_project)
        r.add("PUT", "/projects/{project}/logs", self.accept_client_logs)
        r.add("GET", "/projects/{project}/tunnel", self.tunnel_service)
        r.add("POST", "/projects/{project}/authorization", self.authorization)
        r.add("GET", "/projects/{project}/tables", self.list_tables)
        r.add("GET", "/projects/{project}/tables/{table}", self.get_table)
        r.add("GET", "/projects/{project}/instances", self.list_instances)
        r.add("POST", "/projects/{project}/instances", self.create_instance)
        r.add("GET", "/projects/{project}/instances/{instance}", self.get_instance)
        r.add("PUT", "/projects/{project}/instances/{instance}", self.stop_instance)

    def handle(self, req: Request) -> Response:
        try:
            return self.router.dispatch(req)
        except (StorageError, InvalidName) as exc:
            raise storage_error(exc) from None

    # -- helpers -----------------------------------------------------------------------------
    def _project(self, params: dict[str, str]) -> str:
        name = params["project"]
        if not PROJECT_NAME.match(name) or name.lower() not in self.config.projects:
            raise EmulatorError(404, "NoSuchProject", f"Project not found - {name[:130]!r}")
        return name.lower()

    def _owner(self) -> str:
        return self.config.owner

    # -- service-level -----------------------------------------------------------------------
    def logview_host(self, req: Request, params: dict[str, str]) -> Response:
        # There is no logview; pyodps only builds links from this host.
        return render.text_response(f"http://{req.headers.get('Host', 'localhost')}")

    def tenant(self, req: Request, params: dict[str, str]) -> Response:
        created = int(self.config.created_at)
        return render.json_response(
            {
                "Tenant": {
                    "Name": "emulator",
                    "OwnerId": self._owner(),
                    "TenantId": "emulator",
                    "TenantState": "NORMAL",
                    "CreateTime": created,
                    "UpdateTime": created,
                    "TenantMeta": "{}",
                    "Parameters": {"odps.namespace.schema": "false"},
                }
            }
        )

    # -- projects ----------------------------------------------------------------------------
    def _project_element(self, name: str) -> Raw:
        created = render.rfc822(self.config.created_at)
        return element(
            "Project",
            children(
                [
                    ("Name", name),
                    ("Type", "managed"),
                    ("Comment", "MaxCompute emulator project"),
                    ("State", "AVAILABLE"),
                    ("Owner", self._owner()),
                    ("CreationTime", created),
                    ("LastModifiedTime", created),
                    ("Region", "emulator"),
                ]
            )
            + [
                element(
                    "Properties",
                    [
                        element("Property", children([("Name", k), ("Value", v)]))
                        for k, v in (("odps.schema.evolution.enable", "true"), ("odps.sql.type.system.odps2", "true"))
                    ],
                )
            ],
        )

    def list_projects(self, req: Request, params: dict[str, str]) -> Response:
        root = element(
            "Projects",
            [element("Marker", ""), element("MaxItems", str(PAGE_SIZE))]
            + [self._project_element(p) for p in self.config.projects],
        )
        return render.xml_response(root)

    def get_project(self, req: Request, params: dict[str, str]) -> Response:
        name = self._project(params)
        if "extended" in req.query:
            return render.xml_response(element("Project", [element("ExtendedProperties", [])]))
        created = render.rfc822(self.config.created_at)
        headers = {"x-odps-owner": self._owner(), "x-odps-creation-time": created, "Last-Modified": created}
        return render.xml_response(self._project_element(name), headers=headers)

    def accept_client_logs(self, req: Request, params: dict[str, str]) -> Response:
        return Response(200, {}, b"")  # pyodps uploads usage surveys here; nothing to keep

    def tunnel_service(self, req: Request, params: dict[str, str]) -> Response:
        """Tunnel endpoint discovery: pyodps prefixes the scheme of its REST endpoint."""
        self._project(params)
        if "service" not in req.query:
            raise unsupported(req, "this tunnel call")
        return render.text_response(f"{req.headers.get('Host', '127.0.0.1')}{self.config.tunnel_mount}")

    def authorization(self, req: Request, params: dict[str, str]) -> Response:
        self._project(params)
        if "sign_bearer_token" not in req.query:
            raise unsupported(req, "authorization queries")
        # Logview links need a token; the emulator has no logview, so any opaque value will do.
        token = base64.b64encode(hashlib.sha1(req.body).digest()).decode()
        return render.xml_response(element("Authorization", children([("Result", token)])))

    # -- tables ------------------------------------------------------------------------------
    def _table_id(self, meta: TableMeta) -> str:
        return hashlib.md5(f"{meta.project}.{meta.name}.{meta.created_at}".encode()).hexdigest()

    def _estimated_size(self, meta: TableMeta, rows: int) -> int:
        return rows * sum(_VALUE_BYTES.get(c.type.name, 16) for c in meta.columns)

    def _schema_json(self, meta: TableMeta, extended: bool) -> str:
        rows = self.storage.count(meta.project, meta.name)

        def col(c, partition: bool = False) -> dict[str, object]:
            d: dict[str, object] = {"name": c.name, "type": str(c.type), "comment": c.comment or ""}
            if not partition:
                d["isNullable"] = c.nullable
            return d

        doc: dict[str, object] = {
            "tableName": meta.name,
            "owner": self._owner(),
            "comment": meta.comment or "",
            "createTime": int(meta.created_at),
            "lastDDLTime": int(meta.modified_at),
            "lastModifiedTime": int(meta.modified_at),
            "lifecycle": meta.lifecycle if meta.lifecycle is not None else -1,
            "size": self._estimated_size(meta, rows),
            "recordNum": rows,
            "isVirtualView": False,
            "isExternal": False,
            "shardExist": False,
            "columns": [col(c) for c in meta.columns],
            "partitionKeys": [col(c, partition=True) for c in meta.partition_columns],
        }
        if extended:
            doc.update(
                {
                    "IsArchived": False,
                    "PhysicalSize": doc["size"],
                    "FileNum": 1 if rows else 0,
                    "Reserved": json.dumps({"Transactional": "false"}),
                }
            )
        return json.dumps(doc)

    def _table_element(self, meta: TableMeta, with_schema: bool, extended: bool = False) -> Raw:
        parts = children(
            [
                ("Name", meta.name),
                ("TableId", self._table_id(meta)),
                ("Comment", meta.comment or ""),
                ("Owner", self._owner()),
                ("CreationTime", render.rfc822(meta.created_at)),
                ("LastModifiedTime", render.rfc822(meta.modified_at)),
                ("Type", "MANAGED_TABLE"),
            ]
        )
        if with_schema:
            parts.append(element("Schema", cdata(self._schema_json(meta, extended)), {"format": "json"}))
        return element("Table", parts)

    @staticmethod
    def _page(req: Request, total: int) -> tuple[int, int, str]:
        """(start, end, next marker) for a listing; the marker is an opaque offset."""
        try:
            start = int(req.query.get("marker") or 0)
            size = int(req.query.get("maxitems") or PAGE_SIZE)
        except ValueError:
            raise EmulatorError(400, "InvalidArgument", "marker and maxitems must be integers") from None
        end = min(total, start + max(1, size))
        return start, end, (str(end) if end < total else "")

    def list_tables(self, req: Request, params: dict[str, str]) -> Response:
        project = self._project(params)
        tables = self.storage.list_tables(project, prefix=req.query.get("name") or None)
        start, end, marker = self._page(req, len(tables))
        extended = "extended" in req.query
        items = [self._table_element(m, with_schema=extended, extended=extended) for m in tables[start:end]]
        root = element("Tables", [element("Marker", marker), element("MaxItems", str(PAGE_SIZE)), *items])
        return render.xml_response(root)

    def get_table(self, req: Request, params: dict[str, str]) -> Response:
        project = self._project(params)
        meta = self.storage.require_table(project, params["table"])
        q = req.query
        if "partitions" in q:
            return self._list_partitions(req, meta)
        if "data" in q:
            return self._table_data(req, meta)
        if "partition" in q:
            return self._get_partition(req, meta)
        for action in ("uploads", "downloads", "upload", "download"):
            if action in q:
                raise unsupported(req, f"Tunnel calls on the REST endpoint; use the tunnel at {self.config.tunnel_mount}")
        known = {"curr_project", "curr_schema", "extended"}
        if set(q) - known:
            raise unsupported(req, "this table call")
        return render.xml_response(self._table_element(meta, with_schema=True, extended="extended" in q))

    def _table_data(self, req: Request, meta: TableMeta) -> Response:
        """``table.head(n)`` without the tunnel: the first rows as result-API CSV."""
        limit = int(req.query.get("linenum") or 10000)
        spec = parse_partition_spec(req.query.get("partition", "")) or None
        cols = [c for c in (req.query.get("cols") or "").split(",") if c] or None
        table = self.storage.read(meta.project, meta.name, partition=spec, columns=cols, limit=limit)
        columns = [meta.column(n) for n in table.column_names]
        text, _ = result_csv(_Result(columns, table), limit)
        return render.text_response(text)

    def _partition_element(self, meta: TableMeta, info: PartitionInfo, extended: bool = False) -> Raw:
        size = self._estimated_size(meta, info.record_count)
        schema: dict[str, object] = {
            "createTime": int(info.created_at),
            "lastDDLTime": int(info.modified_at),
            "lastModifiedTime": int(info.modified_at),
            "partitionSize": size,
            "partitionRecordNum": info.record_count,
        }
        if extended:  # pyodps's get_max_partition(skip_empty=True) reads PhysicalSize
            schema.update(
                {
                    "IsArchived": False,
                    "IsExstore": False,
                    "LifeCycle": meta.lifecycle if meta.lifecycle is not None else -1,
                    "PhysicalSize": size,
                    "FileNum": 1 if info.record_count else 0,
                    "Reserved": "{}",
                }
            )
        cols = [element("Column", None, {"Name": k, "Value": v}) for k, v in info.spec.items()]
        return element("Partition", cols + [element("Schema", cdata(json.dumps(schema)))])

    def _list_partitions(self, req: Request, meta: TableMeta) -> Response:
        prefix = parse_partition_spec(req.query.get("partition", "")) or None
        infos = self.storage.partition_infos(meta.project, meta.name, prefix)
        if "reverse" in req.query:
            infos.reverse()
        start, end, marker = self._page(req, len(infos))
        items = [self._partition_element(meta, i, extended="extended" in req.query) for i in infos[start:end]]
        root = element("Partitions", [element("Marker", marker), element("MaxItems", str(PAGE_SIZE)), *items])
        return render.xml_response(root)

    def _get_partition(self, req: Request, meta: TableMeta) -> Response:
        spec: PartitionSpec = parse_partition_spec(req.query["partition"])
        info = self.storage.partition_info(meta.project, meta.name, spec)
        return render.xml_response(self._partition_element(meta, info, extended="extended" in req.query))

    # -- instances ---------------------------------------------------------------------------
    def list_instances(self, req: Request, params: dict[str, str]) -> Response:
        project = self._project(params)
        items = [
            element("Instance", children([("Name", i.id), ("Owner", i.owner), ("Status", i.status)]))
            for i in self.instances.list(project)
        ]
        root = element("Instances", [element("Marker", ""), element("MaxItems", str(PAGE_SIZE)), *items])
        return render.xml_response(root)

    def create_instance(self, req: Request, params: dict[str, str]) -> Response:
        project = self._project(params)
        inst = self.instances.submit(project, req.body, self._owner())
        host = req.headers.get("Host", "localhost")
        location = f"http://{host}/api/projects/{project}/instances/{inst.id}"
        return Response(201, {"Location": location, "Content-Length": "0"}, b"")

    def stop_instance(self, req: Request, params: dict[str, str]) -> Response:
        project = self._project(params)
        self.instances.stop(project, params["instance"])
        return Response(200, {}, b"")

    def get_instance(self, req: Request, params: dict[str, str]) -> Response:
        project = self._project(params)
        inst = self.instances.get(project, params["instance"])
        q = req.query
        if "taskstatus" in q:
            return render.xml_response(self._instance_element(inst, with_tasks=True))
        if "result" in q:
            return self._instance_result(inst)
        if "source" in q:
            return render.xml_response(Raw(inst.job_xml.decode("utf-8")))
        if "instancesummary" in q:
            summary = {"Instance": {"JsonSummary": "{}", "Summary": ""}}
            finalized = "true" if inst.status == TERMINATED else "false"
            return render.json_response(summary, headers={"x-odps-task-finalized": finalized})
        if "instancedetail" in q or "detail" in q:
            return render.json_response({})
        if "instanceprogress" in q:
            return render.xml_response(self._progress_element(inst))
        known = {"curr_project", "curr_schema", "instancestatus"}
        if set(q) - known:
            raise unsupported(req, "this instance call")
        if "instancestatus" in q:  # pyodps's blocking poll: answer as soon as the instance ends
            inst.done.wait(BLOCKING_STATUS_WAIT_S)
        headers = {"x-odps-owner": inst.owner, "x-odps-start-time": render.rfc822(inst.start_time)}
        if inst.end_time is not None:
            headers["x-odps-end-time"] = render.rfc822(inst.end_time)
        return render.xml_response(self._instance_element(inst, with_tasks=False), headers=headers)

    def _instance_element(self, inst: SqlInstance, with_tasks: bool) -> Raw:
        parts = children([("Name", inst.id), ("Owner", inst.owner), ("StartTime", render.rfc822(inst.start_time))])
        if inst.end_time is not None:
            parts.append(element("EndTime", render.rfc822(inst.end_time)))
        parts.append(element("Status", inst.status))
        if with_tasks:
            task = children(
                [
                    ("Name", inst.task_name),
                    ("StartTime", render.rfc822(inst.start_time)),
                    ("EndTime", render.rfc822(inst.end_time) if inst.end_time is not None else None),
                    ("Status", inst.task_status),
                ]
            )
            parts.append(element("Tasks", [element("Task", task, {"Type": inst.task_type})]))
        return element("Instance", parts)

    def _progress_element(self, inst: SqlInstance) -> Raw:
        done = inst.status == TERMINATED
        stage = children(
            [
                ("BackupWorkers", "0"),
                ("TerminatedWorkers", "1" if done else "0"),
                ("RunningWorkers", "0" if done else "1"),
                ("TotalWorkers", "1"),
                ("InputRecords", "0"),
                ("OutputRecords", "0"),
                ("FinishedPercentage", "100" if done else "0"),
            ]
        )
        return element("Progress", [element("Stage", stage, {"ID": "M1_emulator"})])

    def _instance_result(self, inst: SqlInstance) -> Response:
        descriptor = None
        if inst.status != TERMINATED:
            text = ""
        elif inst.task_status != SUCCESS:
            text = inst.error or ""
        elif inst.result_expired:
            raise EmulatorError(400, "InvalidArgument", f"the result of instance {inst.id} has expired; run it again")
        elif inst.result is not None:
            text, truncated = result_csv(inst.result)
            descriptor = result_descriptor(inst.result, truncated)
        else:
            text = "OK"
        attrs = {"Format": "text"}
        if render.is_xml_safe(text):
            body: Raw = cdata(text)
        else:  # XML cannot carry some control characters even in CDATA
            attrs["Transform"] = "Base64"
            body = Raw(base64.b64encode(text.encode("utf-8")).decode())
        task = [element("Name", inst.task_name), element("Result", body, attrs)]
        if descriptor is not None:
            task.append(element("ResultDescriptor", cdata(json.dumps(descriptor))))
        task.append(element("Status", inst.task_status))
        root = element("Instance", [element("Tasks", [element("Task", task, {"Type": inst.task_type})])])
        return render.xml_response(root)


@dataclass
class _Result:
    """A query-result-shaped pair for rendering table rows as result CSV."""

    columns: list
    table: object
