"""The user docs against the code: every command line they show uses real options; the README stays short."""

from __future__ import annotations

import argparse
import importlib
import re
import runpy
import shlex
import subprocess
import sys
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from io import StringIO
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
# `python -m` commands of these are checked; others (`python3 -m venv`) are not txmon's.
PROJECT_PACKAGES = {"producer", "spark_app", "txmon_tui", "txmon_core", "txmon_sinks", "bench"}
README_LIMIT = 25_000  # characters: the details live in docs/ and bench/README.md
PERFORMANCE_LIMIT = 2_000  # characters of the README's "Measured performance" section

# Fenced blocks in these languages hold shell command lines; the rest (json, toml, yaml, text) do not.
SHELL_BLOCKS = {"", "sh", "bash", "shell", "console", "shell-session"}
# Words that run the command after them (`sudo txmon-tui …`), and shell operators that end a command.
WRAPPERS = {"sudo", "env", "exec", "nohup", "time", "command"}
SEPARATORS = {"|", "||", "&", "&&", ";", "(", ")", ">", ">>", "<", "2>", "2>&1"}
# Values the docs write for "fill in your own".
PLACEHOLDER = re.compile(r"^(…|\.\.\.|\[.*|<.*>|\{.*\}|.*…)$")
# Arrows and box drawing: a line of a diagram or a screen capture, not a command line.
DRAWING = re.compile(r"[\u2190-\u21ff\u2500-\u25ff]")
SUBSTITUTION = re.compile(r"\$\(([^()]*)\)")


def doc_files() -> list[Path]:
    """README.md and every docs/*.md."""
    return [README, *sorted((ROOT / "docs").glob("*.md"))]


@dataclass(frozen=True)
class Command:
    """One command line found in a doc: the program, its arguments, and where it was."""

    where: str
    program: str  # a console script (`txmon-tui`), `python -m MODULE`, or a script path under spark-submit
    args: tuple[str, ...]
    text: str


def console_scripts() -> dict[str, str]:
    """The installed commands, `name -> module:function`, from pyproject.toml."""
    with open(ROOT / "pyproject.toml", "rb") as file:
        return dict(tomllib.load(file)["project"]["scripts"])


def snippets(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of every shell line in a fenced block and every inline code span outside one."""
    language: str | None = None
    pending, start = "", 0
    paragraph: list[tuple[int, str]] = []
    for number, line in enumerate([*path.read_text().splitlines(), ""], 1):
        fence = re.match(r"^\s*(```+|~~~+)\s*([\w-]*)", line)
        if language is None and (fence or not line.strip()):
            # Inline spans may run over a line break, so look for them in whole paragraphs.
            joined = " ".join(text for _, text in paragraph)
            for span in re.findall(r"(?<!`)`([^`]+)`(?!`)", joined):
                yield paragraph[0][0], span
            paragraph = []
        if fence:
            language = None if language is not None else fence.group(2).lower()
        elif language is None:
            if line.strip():
                paragraph.append((number, line.strip()))
        elif language in SHELL_BLOCKS:
            text = re.sub(r"^\s*\$ ", "", line)  # a shell prompt
            if not pending:
                start = number
            if text.rstrip().endswith("\\"):
                pending += text.rstrip()[:-1] + " "
                continue
            yield start, pending + text
            pending = ""


def words(text: str) -> list[str]:
    """Shell words of one line, comments dropped and operators split off."""
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        return list(lexer)
    except ValueError:  # an unbalanced quote: prose, not a command line
        return []


def commands_in(where: str, text: str, scripts: dict[str, str]) -> Iterator[Command]:
    """The txmon commands in one line: at the start of a shell command, after `$(`, `|`, `;` and the like."""
    for inner in SUBSTITUTION.findall(text):
        yield from commands_in(where, inner, scripts)
    tokens = words(SUBSTITUTION.sub("SUBSTITUTION", text))
    at_start = True
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token in SEPARATORS:
            at_start = True
        elif at_start and (re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", token) or token in WRAPPERS):
            pass  # `TXMON_PARTITIONS=3 docker …`, `sudo …`: the command is the next word
        elif at_start:
            at_start = False
            name = token.rsplit("/", 1)[-1]
            program, skip = None, 1
            if name in scripts:
                program = name
            elif (re.fullmatch(r"python3?(\.\d+)?", name) and tokens[index + 1 : index + 2] == ["-m"]
                  and tokens[index + 2 : index + 3]
                  and tokens[index + 2].split(".")[0] in PROJECT_PACKAGES):
                program, skip = f"python -m {tokens[index + 2]}", 3
            elif name == "spark-submit":
                script = next((i for i in range(index + 1, len(tokens)) if tokens[i].endswith(".py")), None)
                if script is not None:
                    program, skip = tokens[script], script - index + 1
            elif name == "make" and tokens[index + 1 : index + 2] == ["run"]:
                # `make run ARGS="…"` hands ARGS to txmon-tui.
                for extra in tokens[index + 2 :]:
                    if extra.startswith("ARGS="):
                        yield Command(where, "txmon-tui", tuple(words(extra[5:])), text.strip())
            if program is not None:
                end = next((i for i in range(index + skip, len(tokens)) if tokens[i] in SEPARATORS),
                           len(tokens))
                # `[--flag VALUE]` in a synopsis: the option is checked like any other.
                args = tuple(_unbracket(arg) for arg in tokens[index + skip : end])
                if not any(DRAWING.search(arg) for arg in args):
                    yield Command(where, program, args, text.strip())
                index = end
                continue
        index += 1


def _unbracket(arg: str) -> str:
    """`[--flag` → `--flag`, `VALUE]` → `VALUE`; a whole `[FILE]` stays a placeholder."""
    if arg.startswith("[-"):
        arg = arg[1:]
    return arg[:-1] if arg.endswith("]") and "[" not in arg else arg


def documented_commands(path: Path, scripts: dict[str, str]) -> list[Command]:
    """Every txmon command line in one doc."""
    return [command for number, text in snippets(path)
            for command in commands_in(f"{path.relative_to(ROOT)}:{number}", text, scripts)]


class _Parsed(Exception):
    """Raised instead of parsing: carries the parser a command built and the arguments it was given."""

    def __init__(self, parser: argparse.ArgumentParser, args: list[str]) -> None:
        super().__init__(parser.prog)
        self.parser, self.args = parser, args


def _capture(parser: argparse.ArgumentParser, args: list[str] | None = None,
             namespace: argparse.Namespace | None = None) -> tuple[argparse.Namespace, list[str]]:
    raise _Parsed(parser, list(sys.argv[1:] if args is None else args))


def _no_process(*args: object, **kwargs: object) -> None:
    raise AssertionError("a command tried to start a process while only its parser was being built")


def parser_of(command: Command, scripts: dict[str, str],
              monkeypatch: pytest.MonkeyPatch) -> tuple[argparse.ArgumentParser, list[str]] | None:
    """Run the command's own entry point up to its parse_args, which hands back its parser instead of parsing.

    The entry point is the one the shell would run (a console script, `python -m`'s `__main__`, a
    spark-submit script), so subcommand dispatch (`python -m bench pipeline`) happens as for real;
    nothing after parsing runs. None when the command reached no parser (it takes no options).
    """
    with monkeypatch.context() as patch:
        patch.setattr(argparse.ArgumentParser, "parse_known_args", _capture)
        patch.setattr(subprocess.Popen, "__init__", _no_process)
        patch.setattr(sys, "argv", [command.program, *command.args])
        try:
            with redirect_stdout(StringIO()), redirect_stderr(StringIO()):
                if command.program in scripts:
                    module, _, function = scripts[command.program].partition(":")
                    getattr(importlib.import_module(module), function)()
                elif command.program.startswith("python -m "):
                    runpy.run_module(command.program.removeprefix("python -m "), run_name="__main__",
                                     alter_sys=False)
                else:
                    runpy.run_path(str(ROOT / command.program), run_name="__main__")
        except _Parsed as parsed:
            return parsed.parser, parsed.args
        except SystemExit:
            return None
    return None


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _values_taken(action: argparse.Action, rest: list[str]) -> int:
    """How many of the words after an option its action consumes."""
    if action.nargs == 0:
        return 0
    if action.nargs in (None, 1):
        return 1
    if isinstance(action.nargs, int):
        return action.nargs
    following = 0
    while following < len(rest) and not rest[following].startswith("-"):
        following += 1
    return min(following, 1) if action.nargs == "?" else following


def problems(parser: argparse.ArgumentParser, args: list[str]) -> list[str]:
    """What in `args` the parser does not have: options, subcommands, values outside an option's choices."""
    found: list[str] = []
    subcommands = _subcommands(parser)
    index = 0
    unknown = False  # the word after an unknown option may be its value
    while index < len(args):
        arg = args[index]
        index += 1
        if arg == "--":
            break
        if not arg.startswith("-") or arg == "-" or re.fullmatch(r"-\d.*", arg):
            if subcommands and not unknown and re.fullmatch(r"[a-z][a-z0-9-]*", arg):
                if arg not in subcommands:
                    found.append(f"no subcommand {arg!r} (has {', '.join(sorted(subcommands))})")
                    return found
                parser = subcommands[arg]
                subcommands = _subcommands(parser)  # `rules set …`: a subcommand may have its own
            unknown = False
            continue
        option, equals, value = arg.partition("=")
        action = parser._option_string_actions.get(option)
        if action is None and not option.startswith("--") and len(option) > 2:
            option, value, equals = option[:2], option[2:], "="  # `-Xkey=value`: a value stuck to its letter
            action = parser._option_string_actions.get(option)
        unknown = action is None and not equals
        if action is None:
            found.append(f"no option {option}")
            continue
        if equals:
            values = [value]
        else:
            taken = _values_taken(action, args[index:])
            values, index = args[index : index + taken], index + taken
        if action.choices is not None:
            found += [f"{option} {given!r}: not one of {', '.join(map(str, action.choices))}"
                      for given in values if not PLACEHOLDER.match(given) and given not in action.choices]
    return found


def test_the_checker_finds_what_a_parser_lacks() -> None:
    """A wrong option, a bad choice and an unknown subcommand are caught; the real ones pass."""
    parser = argparse.ArgumentParser()
    parser.add_argument("-b", "--bootstrap-servers")
    parser.add_argument("--mode", choices=("microbatch", "realtime"))
    parser.add_argument("--headless", action="store_true")
    parser.add_subparsers().add_parser("report").add_argument("--level")
    assert problems(parser, ["-b", "k:9092", "--mode=realtime", "--headless", "report", "--level", "x"]) == []
    assert problems(parser, ["-bk:9092", "--mode", "…"]) == []
    assert problems(parser, ["--bootstrap", "k", "--mode", "fast", "--level", "x"]) == [
        "no option --bootstrap", "--mode 'fast': not one of microbatch, realtime", "no option --level"]
    assert problems(parser, ["info"]) == ["no subcommand 'info' (has report)"]


def test_commands_are_found_where_a_shell_would_run_them() -> None:
    """Prompts, continuations, `$(…)`, pipes, env prefixes and `make run ARGS=…`; not diagrams or output."""
    scripts = {"txmon-tui": "", "txmon-spark": ""}
    found = [(c.program, c.args) for line in (
        "TXMON_X=1 txmon-tui -b k:9092 --rate 5 | tee out  # a comment --not-an-option",
        'spark-submit --master m --jars "$(txmon-spark --print-jars)" spark_app/__main__.py -b k',
        "python -m bench pipeline --rate 10",
        'make run ARGS="--rate 200"',
        " txmon-tui ◀── tails \"alerts\"",
        "txmon-tui: error: broker: no Kafka broker answered",
        "echo txmon-tui --nothing",
        "txmon-tui report [--level LEVEL] [FILE]",
    ) for c in commands_in("x", line, scripts)]
    assert found == [
        ("txmon-tui", ("-b", "k:9092", "--rate", "5")),
        ("txmon-spark", ("--print-jars",)),
        ("spark_app/__main__.py", ("-b", "k")),
        ("python -m bench", ("pipeline", "--rate", "10")),
        ("txmon-tui", ("--rate", "200")),
        ("txmon-tui", ("report", "--level", "LEVEL", "[FILE]")),
    ]


@pytest.mark.filterwarnings("ignore:'bench.__main__' found in sys.modules:RuntimeWarning")
@pytest.mark.parametrize("path", doc_files(), ids=lambda path: str(path.relative_to(ROOT)))
def test_documented_commands_use_real_options(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each txmon command line in the doc names only options, subcommands and choices its parser has."""
    scripts = console_scripts()
    failures = []
    for command in documented_commands(path, scripts):
        built = parser_of(command, scripts, monkeypatch)
        if built is None:
            extra = [arg for arg in command.args if not PLACEHOLDER.match(arg)]
            if extra:
                failures.append(f"{command.where}: `{command.text}`: {command.program} takes no {extra}")
            continue
        parser, args = built
        failures += [f"{command.where}: `{command.text}`: {problem}" for problem in problems(parser, args)]
    assert not failures, "\n".join(failures)


def test_make_targets_named_in_the_readme_exist() -> None:
    """`make run`, `make test` and any other target the README names are in the Makefile."""
    targets = set(re.findall(r"(?m)^([\w-]+):", (ROOT / "Makefile").read_text()))
    named = {found.group(1) for _, text in snippets(README)
             for found in re.finditer(r"(?:^|[;&|(]\s*)make ([a-z][\w-]*)", text.strip())}
    assert {"run", "test"} <= named
    assert named <= targets, f"not in the Makefile: {sorted(named - targets)}"


def test_readme_is_short() -> None:
    """The README stays an overview: details belong in docs/ and bench/README.md."""
    text = README.read_text()
    assert len(text) <= README_LIMIT, f"README.md has {len(text):,} characters; the limit is {README_LIMIT:,}"
    performance = re.search(r"(?ms)^## Measured performance\n.*?(?=^## |\Z)", text)
    assert performance, "README.md has no '## Measured performance' section"
    assert len(performance.group(0)) <= PERFORMANCE_LIMIT, (
        f"'Measured performance' has {len(performance.group(0)):,} characters; "
        f"the limit is {PERFORMANCE_LIMIT:,}: the detail goes to bench/README.md")


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"(?ms)^```.*?^```", "", path.read_text())
    return {_anchor(heading) for heading in re.findall(r"(?m)^#{1,6} (.+)$", text)}


@pytest.mark.parametrize("path", [*doc_files(), ROOT / "bench" / "README.md"],
                         ids=lambda path: str(path.relative_to(ROOT)))
def test_links_between_docs_resolve(path: Path) -> None:
    """Every relative link names a file that exists and, with `#…`, a heading in it."""
    text = re.sub(r"(?ms)^```.*?^```", "", path.read_text())
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue  # http:, https:, mailto:
        file, _, anchor = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        if not linked.exists():
            broken.append(f"{target}: no file {linked.relative_to(ROOT)}")
        elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
            broken.append(f"{target}: no heading #{anchor} in {linked.relative_to(ROOT)}")
    assert not broken, f"{path.relative_to(ROOT)}:\n" + "\n".join(broken)
