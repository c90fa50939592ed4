"""docs/azlb.schema.json describes what each command prints under -o json:
real output, from a state with every kind of object and a running engine, is
checked against it (with a small validator of the schema's own subset:
type, enum, required, properties, items, allOf, oneOf, $ref, minimum, maximum,
additionalProperties false)."""
import json
import os
import subprocess
import unittest

from backends import free_port
from engine_case import FAST_PROBE, EngineCase
from harness import AZLB, SOURCE

with open(os.path.join(SOURCE, "docs", "azlb.schema.json")) as f:
    SCHEMA = json.load(f)

TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}


def errors(value, schema, path="$"):
    """Every way `value` breaks `schema`, as 'path: why' lines."""
    out = []
    if "$ref" in schema:
        name = schema["$ref"].split("/")[-1]
        return errors(value, SCHEMA["$defs"][name], path)
    for sub in schema.get("allOf", []):
        out += errors(value, sub, path)
    if "oneOf" in schema:
        fits = [sub for sub in schema["oneOf"] if not errors(value, sub, path)]
        if len(fits) != 1:
            out.append(f"{path}: {value!r} fits {len(fits)} of oneOf's {len(schema['oneOf'])}")
    if "type" in schema:
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        def is_kind(k):
            if k == "integer":
                return isinstance(value, int) and not isinstance(value, bool)
            if k == "number":
                return isinstance(value, (int, float)) and not isinstance(value, bool)
            return isinstance(value, TYPES[k])
        if not any(is_kind(k) for k in kinds):
            return out + [f"{path}: {value!r} is not {' or '.join(kinds)}"]
    if "enum" in schema and value not in schema["enum"]:
        out.append(f"{path}: {value!r} not in {schema['enum']}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            out.append(f"{path}: {value} < {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            out.append(f"{path}: {value} > {schema['maximum']}")
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                out.append(f"{path}: no {key!r}")
        props = schema.get("properties", {})
        for key, v in value.items():
            if key in props:
                out += errors(v, props[key], f"{path}.{key}")
            elif schema.get("additionalProperties") is False:
                out.append(f"{path}: unexpected {key!r}")
    if isinstance(value, list) and "items" in schema:
        for i, v in enumerate(value):
            out += errors(v, schema["items"], f"{path}[{i}]")
    return out


class JsonSchema(EngineCase):
    def check(self, command, *args, stream="out", lines=False):
        r = self.azlb(*args, "-o", "json")
        text = r.out if stream == "out" else r.err
        docs = [json.loads(l) for l in text.splitlines()] if lines else [json.loads(text)]
        for doc in docs:
            self.assertEqual(errors(doc, SCHEMA["commands"][command]), [], f"{command}: {json.dumps(doc)[:2000]}")
        return r

    def test_the_validator_finds_what_is_wrong(self):
        vm = {"name": "x", "cloud_service": "web", "private_ip": "1", "os": "bsd", "image": "", "created_by": "gallery",
              "endpoints": [{"name": "e", "protocol": "tcp", "public_port": 70000}]}
        found = errors(vm, SCHEMA["commands"]["vm show"])
        self.assertIn("$.os: 'bsd' not in ['linux', 'windows']", found)
        self.assertIn("$.endpoints[0]: no 'private_port'", found)
        self.assertIn("$.endpoints[0].public_port: 70000 fits 0 of oneOf's 2", found)
        self.assertEqual(errors({"error": "x", "exit_code": 3, "extra": 1}, SCHEMA["commands"]["error"]),
                         ["$: unexpected 'extra'"])

    def test_every_command_output_matches_the_schema(self):
        self.farm(3, probe=FAST_PROBE)
        self.ok("endpoint", "acl", "add", "vm1", "http", "--order", "10", "--action", "permit", "--remote-subnet",
                "0.0.0.0/0", "--description", "all")
        self.ok("vm", "create", "vm9", "--cloud-service", "web", "--os", "windows")
        self.ok("lbset", "drain", "webset", "--vm", "vm3")
        self.check("vm create", "vm", "create", "vm10", "--cloud-service", "web", "--no-default-endpoints")
        self.check("vm create", "--dry-run", "vm", "create", "vm11", "--cloud-service", "web")
        for command, args in (("vm list", ("vm", "list")), ("vm show", ("vm", "show", "vm9")),
                              ("service list", ("service", "list")), ("service show", ("service", "show", "web")),
                              ("endpoint list", ("endpoint", "list", "vm1")),
                              ("endpoint show", ("endpoint", "show", "vm1", "http")),
                              ("lbset list", ("lbset", "list")), ("lbset show", ("lbset", "show", "webset")),
                              ("status", ("status",)), ("engine check", ("engine", "check")),
                              ("state history", ("state", "history"))):
            self.check(command, *args)
        self.ok("engine", "start")
        self.addCleanup(self.azlb, "engine", "stop")
        self.wait_health({"vm1": "up", "vm2": "up", "vm3": "up"})
        status = self.check("status", "status").json()
        self.assertEqual(len(status["engines"]), 1)
        self.check("lbset show", "lbset", "show", "webset")
        self.check("status --watch", "status", "--watch", "1", "--count", "2", lines=True)
        self.check("lbset leave", "lbset", "leave", "webset", "--vm", "vm2")
        self.check("lbset delete", "lbset", "delete", "webset")
        self.check("endpoint list", "endpoint", "list", "vm1")  # unpublished
        self.check("endpoint set", "endpoint", "set", "vm1", "http", "--public-port", str(free_port()))
        self.check("endpoint set", "endpoint", "set", "vm3", "http", "--idle-timeout", "9")
        # Errors: one object on stderr with the exit code.
        for args, code in ((("vm", "show", "nosuch"), 3), (("vm", "create", "vm1", "--cloud-service", "web"), 4),
                           (("endpoint", "add", "vm1", "--name", "x", "--protocol", "tcp", "--public-port", "0",
                             "--private-port", "1"), 2), (("vmm", "list"), 2)):
            r = self.check("error", *args, stream="err")
            self.assertEqual(r.rc, code)
            self.assertEqual(json.loads(r.err)["exit_code"], code)


if __name__ == "__main__":
    unittest.main()
