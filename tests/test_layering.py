#!/usr/bin/env python3
"""test_layering.py: which headers each module may include (docs/ARCHITECTURE.md).

Reads every C/C++/CUDA source and header of the checked modules and fails, naming file, line and
header, when a module includes an engine header outside its allowance, when it includes a header
of a module it may not build on (MODULES; base/ includes nothing of ours), or when the engine
includes a header of a module built on top of it (imports run one way: base <- engine <- media
<- search <- tools). The engine-private headers (ev_private.h, cpu/, cuda/, ops_ref_impl.h, yaml_util.h)
are in no module's allowance; tests/ and bench/ look inside the engine on purpose and
are not checked.

    test_layering.py SOURCE_ROOT
"""
import os
import re
import sys

# The engine headers other modules build on, by job (see each header's top comment).
BASE = {"echoview.h", "ev_base.h"}
GRAPH = BASE | {"ev_genotype.h", "ev_graph.h", "ev_bundle.h"}
TRAINING = GRAPH | {"ev_builder.h", "ops_ref.h", "ev_safetensors.h", "ev_pool.h", "ev_isa.h"}

ALLOWED = {
    "media": BASE,
    "phantom": BASE,
    "search": TRAINING,
    "tools": GRAPH | {"ev_onnx.h"},  # echoview export
    "plugins": {"echoview.h"},
    "daemon": {"echoview.h"},
    "bridge": {"echoview.h"},
}

# The modules whose headers each module may include (the engine's by the table above). base/ is
# below everything and includes nothing of ours.
MODULES = {
    "base": set(),
    "engine": {"base"},
    "media": {"base", "engine"},
    "phantom": {"base", "engine"},
    "search": {"base", "engine", "media"},
    "tools": {"base", "engine", "media", "phantom", "search", "bridge", "daemon"},
    "plugins": {"base", "engine", "media", "phantom"},
    "daemon": {"base", "engine", "plugins"},
    "bridge": {"base", "engine", "media"},
}

SOURCE = re.compile(r"\.(c|h|cpp|cu)$")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def engine_headers(root):
    """Every header under engine/, by the names an include can use: 'cpu/cpu_internal.h' and
    'cpu_internal.h' (from inside its folder) both name engine/cpu/cpu_internal.h."""
    names = {}
    engine = os.path.join(root, "engine")
    for folder, _, files in os.walk(engine):
        for f in files:
            if f.endswith(".h"):
                rel = os.path.relpath(os.path.join(folder, f), engine)
                names[rel] = rel
                names.setdefault(f, rel)
    names["onnx.pb-c.h"] = "onnx/onnx.pb-c.h"  # generated at build time
    return names


def sources(folder):
    for dirpath, _, files in os.walk(folder):
        for f in sorted(files):
            if SOURCE.search(f):
                yield os.path.join(dirpath, f)


def includes(path):
    with open(path, encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, 1):
            m = INCLUDE.match(line)
            if m:
                yield number, m.group(1)


def main():
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else ".")
    headers = engine_headers(root)
    problems = []
    checked = 0
    for module, allowed in sorted(ALLOWED.items()):
        folder = os.path.join(root, module)
        for path in sources(folder):
            checked += 1
            here = os.path.dirname(path)
            for line, name in includes(path):
                resolved = os.path.normpath(os.path.join(here, name))
                if os.path.exists(resolved) and not resolved.startswith(
                    os.path.join(root, "engine") + os.sep
                ):
                    continue  # the module's own header, or another module's by relative path
                if os.path.exists(resolved):
                    rel = os.path.relpath(resolved, os.path.join(root, "engine"))
                elif name in headers:
                    rel = headers[name]
                else:
                    continue  # another module's header found through the include path
                if rel not in allowed:
                    problems.append(
                        f"{os.path.relpath(path, root)}:{line}: includes engine/{rel}, which "
                        f"{module}/ may not include (allowed: {', '.join(sorted(allowed))})"
                    )
    # the engine includes nothing of the modules above it
    above = {}
    for module in ALLOWED:
        for path in sources(os.path.join(root, module)):
            if path.endswith(".h"):
                above.setdefault(os.path.basename(path), os.path.relpath(path, root))
    for path in sources(os.path.join(root, "engine")):
        checked += 1
        here = os.path.dirname(path)
        for line, name in includes(path):
            if os.path.exists(os.path.join(here, name)) or name in headers:
                continue
            if os.path.basename(name) in above:
                problems.append(
                    f"{os.path.relpath(path, root)}:{line}: the engine includes {name} "
                    f"({above[os.path.basename(name)]}), a module built on top of it"
                )
    # module to module: every include that names a header of another module
    owner = {}
    for module in MODULES:
        for path in sources(os.path.join(root, module)):
            if path.endswith(".h"):
                owner.setdefault(os.path.basename(path), set()).add(module)
    for module, allowed in sorted(MODULES.items()):
        for path in sources(os.path.join(root, module)):
            if module == "base":
                checked += 1
            for line, name in includes(path):
                homes = owner.get(os.path.basename(name), set())
                if not homes or module in homes:
                    continue  # a system or generated header, or the module's own
                if not homes & allowed:
                    problems.append(
                        f"{os.path.relpath(path, root)}:{line}: includes {name} of "
                        f"{'/, '.join(sorted(homes))}/, which {module}/ may not build on "
                        f"(allowed: {', '.join(sorted(allowed)) or 'nothing of ours'})"
                    )
    for p in problems:
        print(p)
    print(f"{checked} files checked, {len(problems)} layering problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
