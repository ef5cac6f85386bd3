"""Bad input at the command line: exit 2 (1 where the gateway refused the account), one line
on stderr, no traceback, nothing sent. The command runs in-process (``main``)."""

from __future__ import annotations

import gc
import io
import os
import socket
from pathlib import Path

import pytest

from smsbridge import RetryPolicy
from smsbridge._cli import main
from smsbridge._cli.inputs import InputError, Recipients
from smsbridge.testing import FakeSmsClub, FakeWebcom

from ..conftest import free_port
from ..helpers import TOKEN, ThreadedFake


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("SMSBRIDGE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SMSBRIDGE_SMSCLUB_TOKEN", TOKEN)
    monkeypatch.setenv("SMSBRIDGE_SMSCLUB_URL", f"http://127.0.0.1:{free_port()}")


def fails(argv: list[str], capsys: pytest.CaptureFixture[str], status: int = 2) -> str:
    """Run the command; it must exit with `status` and one line on stderr, no traceback."""
    assert main(argv) == status
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("smsbridge: "), err
    assert "Traceback" not in err
    return err


SEND = ["send", "smsclub", "--sender", "Shop", "--text", "Sale"]


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (
            ["send", "smsclub", "--sender", "Shop", "--text", "hi\udcff", "--to", "380501234570"],
            "--text",
        ),
        (
            ["send", "smsclub", "--sender", "Sh\udcffop", "--text", "hi", "--to", "380501234570"],
            "--sender",
        ),
        (
            ["send", "smsclub", "--sender", "Shop", "--text", "hi", "--to", "38050\udcff1234570"],
            "--to",
        ),
        (
            [
                "send",
                "smsclub",
                "--sender",
                "Shop",
                "--text",
                "hi",
                "--dry-run",
                "--to",
                "3805\udcff",
            ],
            "--to",
        ),
        (["status", "smsclub", "12\udcff"], "ID"),
    ],
)
def test_arguments_that_are_not_utf8(
    argv: list[str], option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bytes the terminal passed that are not UTF-8 (Python hands them over as escapes)
    could never be sent: refused with the byte shown, where the text raised out of the
    command (or, with --dry-run, was planned)."""
    err = fails(argv, capsys)
    assert option in err and "not UTF-8 text" in err and "\\xff" in err


def test_a_file_that_is_not_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Windows-1251 bytes: the line and the byte are named."""
    path = tmp_path / "cp1251.csv"
    path.write_bytes("phone,text\n380501234567,Привіт\n".encode("cp1251"))
    err = fails([*SEND, "--to-file", str(path)], capsys)
    assert "line 2 is not UTF-8" in err and "save the file as UTF-8" in err


def test_a_file_the_system_cannot_read_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """A read that fails under the file (EIO: a failing disk, a network share gone; here
    Linux's /proc/self/mem, which refuses its first page) is one line, where a traceback
    ended the command."""
    err = fails([*SEND, "--to-file", "/proc/self/mem"], capsys)
    assert err == "smsbridge: /proc/self/mem: cannot read it: Input/output error\n"


def test_a_header_too_wide_to_print_is_shown_cut(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A first row of 100,000 fields naming no phone column: one line of a few hundred
    characters, where the whole row (megabytes) was printed as the "one line"."""
    path = tmp_path / "wide.csv"
    path.write_text("name," * 100_000 + "\n380501234567\n", encoding="utf-8")
    err = fails([*SEND, "--to-file", str(path)], capsys)
    assert "names no phone column" in err and "'name', 'name'" in err and len(err) < 400


def test_a_field_over_the_csv_limit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A 200,000-character field (an unclosed quote swallowing the file, say). The file is
    closed when the error is raised, not when a collection finds the error's frames (a test
    much later then warned of the unclosed file)."""
    path = tmp_path / "long.csv"
    path.write_text('phone,text\n380501234567,"' + "x" * 200_000 + '"\n', encoding="utf-8")
    gc.disable()
    try:
        err = fails([*SEND, "--to-file", str(path)], capsys)
        assert "line" in err and "field larger than field limit" in err
        assert str(path) not in _open_files()
    finally:
        gc.enable()


def test_a_quote_left_open_takes_no_row_with_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A quote opened and never closed: the rows after it are not read as the first row's
    text (one message of the raw CSV went to one number, and the others got no outcome)."""
    path = tmp_path / "open.csv"
    path.write_text(
        'phone,text\n380501234561,"oops\n380501234562,hello\n380501234563,hello\n',
        encoding="utf-8",
    )
    err = fails([*SEND, "--to-file", str(path)], capsys)
    assert "line 4" in err and "unexpected end of data" in err


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (
            "phone,text\n380501237002,Hi Petro\n380501237001,Hello, Olena! Your order is ready\n",
            "line 3 holds 3 fields, the header 2: quote a field holding ','",
        ),
        (
            "phone;text\n380501237001;Hi\n380501237002;Hi;Olena\n",
            "line 3 holds 3 fields, the header 2: quote a field holding ';'",
        ),
        ("380501235001\n380501235002,380501235003\n", "line 2 holds 2 fields, but the file "),
        ("380501235011,Hello Olena\n", "line 1 holds 2 fields, but the file has no header"),
        # a header padded as a spreadsheet pads it: the spill under its unnamed cell
        ("phone;text;\r\n380501234569;Знижка 10%; тільки сьогодні\r\n", "line 2 holds 3 fields"),
    ],
)
def test_a_row_wider_than_its_file(
    content: str, said: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unquoted delimiter in a text, or a second column in a file without a header: the
    text was cut at the comma and sent so, the second number got no outcome at all."""
    path = tmp_path / "wide.csv"
    path.write_text(content, encoding="utf-8")
    err = fails([*SEND, "--to-file", str(path), "--dry-run"], capsys)
    assert said in err


def test_trailing_empty_cells_are_no_fields(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What a spreadsheet pads a row with is read as nothing."""
    path = tmp_path / "padded.csv"
    path.write_text("phone,text,,\n380501237001,Hello,,\n380501237002,Hi,, \n", encoding="utf-8")
    bare = tmp_path / "bare.csv"
    bare.write_text("380501237001,\n380501237002\n", encoding="utf-8")
    excel = tmp_path / "excel.csv"
    excel.write_text("phone;text;;\r\n380501237001;Hi;;\r\n380501237002;Hello\r\n", "utf-8")
    rows = tmp_path / "rows.csv"  # rows padded past a header that is not
    rows.write_text("phone,text\n380501237001,Hi Olena,\n380501237002,Hi Ivan,\n", "utf-8")
    for file in (path, bare, excel, rows):
        assert main([*SEND, "--to-file", str(file), "--dry-run"]) == 0
        assert "to send                    2" in capsys.readouterr().out


@pytest.mark.parametrize(
    "content",
    [
        # the sniffer takes the apostrophes for quotes and guesses ','
        "phone;text\n380501234567;Акція, 'Весна', тільки сьогодні\n380501234568;Привіт\n",
        # rows that disagree, after a blank first line: the header's own delimiter
        "  \nphone;text\n380501234567;Hello, Olena, 10% off\n380501234568;Hi\n",
    ],
)
def test_a_semicolon_file_whose_texts_mislead_the_guess(
    content: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Once refused ("the header names no phone column"): read by its header's delimiter."""
    path = tmp_path / "semi.csv"
    path.write_text(content, encoding="utf-8")
    assert main([*SEND, "--to-file", str(path), "--dry-run"]) == 0
    assert "to send                    2" in capsys.readouterr().out


def test_excel_s_line_naming_the_delimiter(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``sep=;`` before the header (Excel writes it): the delimiter, not a header of no
    phone column; lines are still counted as the file's."""
    path = tmp_path / "sep.csv"
    path.write_text("sep=;\r\nphone;text\r\n380501234567;Hello, Olena\r\n", encoding="utf-8")
    assert main([*SEND, "--to-file", str(path), "--dry-run"]) == 0
    assert "to send                    1" in capsys.readouterr().out
    path.write_text("sep=;\r\nphone;text\r\n380501234567;Hi;there\r\n", encoding="utf-8")
    assert "line 3 holds 3 fields" in fails([*SEND, "--to-file", str(path), "--dry-run"], capsys)
    path.write_text("sep=;\rphone;text\r380501234593;Mac\r", encoding="utf-8")  # CR alone
    assert main([*SEND, "--to-file", str(path), "--dry-run"]) == 0
    assert "to send                    1" in capsys.readouterr().out


def test_to_numbers_beside_a_file_of_texts_need_a_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The file's rows bring their texts; --to's numbers bring none (each was rejected,
    "empty text")."""
    path = tmp_path / "texts.csv"
    path.write_text("phone,text\n380501234567,Hi\n", encoding="utf-8")
    argv = ["send", "smsclub", "--sender", "Shop", "--to-file", str(path), "--to", "380501234568"]
    assert "--to's numbers need --text" in fails([*argv, "--dry-run"], capsys)
    assert main([*argv, "--text", "Hello", "--dry-run"]) == 0
    params = tmp_path / "params.csv"
    params.write_text("phone,param1\n994501234567,1234\n", encoding="utf-8")
    template = ["send", "smsplus", "--sender", "Shop", "--template", "1", "--dry-run"]
    err = fails([*template, "--to-file", str(params), "--to", "994501234568"], capsys)
    assert "--to's numbers bring no template parameters" in err


@pytest.mark.parametrize(
    ("content", "argv", "said"),
    [
        (
            "phone,param1,param3\n994501234571,Aysel,today\n",
            ["--template", "2"],
            "the header has param3 but no param2",
        ),
        ("phone,text\n380501234567,Hi\n", ["--text-column", "phone"], "the text column is the"),
    ],
)
def test_columns_that_would_be_read_wrong(
    content: str, argv: list[str], said: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """param3 without param2 filled {2}; the phone column named as the text sent numbers."""
    path = tmp_path / "cols.csv"
    path.write_text(content, encoding="utf-8")
    base = ["send", "smsplus" if "--template" in argv else "smsclub", "--sender", "Shop"]
    assert said in fails([*base, *argv, "--to-file", str(path), "--dry-run"], capsys)


def test_a_phone_column_named_as_texts_are_is_only_the_phone_column(tmp_path: Path) -> None:
    """``--phone-column SMS``: SMS is a usual name of the text column, but not of this one
    (a template file was refused; a file of numbers sent them as their own texts)."""
    path = tmp_path / "sms.csv"
    path.write_text("Name;SMS;param1\nOlena;994501112233;a\n", encoding="utf-8")
    params = Recipients([], path, "params", phone_column="SMS")
    assert [entry for _, entry in params.rows()] == [("994501112233", ("a",))]
    texts = Recipients([], path, "texts", "Hello", phone_column="SMS")
    assert not texts.personalised
    assert [entry for _, entry in texts.rows()] == [("994501112233", "Hello")]


def test_a_comma_in_a_column_never_read_where_one_text_goes_to_all(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With one text for everyone only the numbers are read: a name's unquoted comma cannot
    cut a text, and a number misread is rejected with its reason (the file was refused, and
    so was the resume of a journal the code before began)."""
    path = tmp_path / "names.csv"
    path.write_text("phone,name\n380501234567,Client\n380501234568,Ivanov, Ivan\n", "utf-8")
    assert main([*SEND, "--to-file", str(path), "--dry-run"]) == 0
    assert "to send                    2" in capsys.readouterr().out


def test_a_blank_text_cell_takes_the_default_text(tmp_path: Path) -> None:
    """Spaces are no text: the row gets --text, as an empty cell does (it was rejected)."""
    path = tmp_path / "blank.csv"
    path.write_text("phone,text\n380501234567,   \n380501234568,\n", encoding="utf-8")
    rows = [entry for _, entry in Recipients([], path, "texts", "Default").rows()]
    assert rows == [("380501234567", "Default"), ("380501234568", "Default")]


def _open_files() -> set[str]:
    """What this process has open (Linux; nothing elsewhere)."""
    found = set()
    for fd in os.listdir("/proc/self/fd") if os.path.isdir("/proc/self/fd") else []:
        try:
            found.add(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:  # the listing's own descriptor, closed since
            continue
    return found


@pytest.mark.parametrize("header", ["phone,phone", "phone,text,message", "phone,text,TEXT"])
def test_a_header_naming_a_column_twice(
    header: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two phone columns, or two text columns: which one? Refused."""
    path = tmp_path / "twice.csv"
    path.write_text(f"{header}\n380501234567,a,b\n", encoding="utf-8")
    err = fails([*SEND, "--to-file", str(path)], capsys)
    assert "more than one" in err


def test_a_header_with_no_phone_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Once read as numbers (every row rejected, exit 0); now refused, the header quoted."""
    path = tmp_path / "nophone.csv"
    path.write_text("Name;Surname;Tel. number\nOlena;K;380501234567\n", encoding="utf-8")
    err = fails([*SEND, "--to-file", str(path)], capsys)
    assert "'Name', 'Surname', 'Tel. number'" in err and "--phone-column" in err


def test_a_phone_column_that_is_not_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--phone-column names a column the header lacks."""
    path = tmp_path / "x.csv"
    path.write_text("phone\n380501234567\n", encoding="utf-8")
    err = fails([*SEND, "--to-file", str(path), "--phone-column", "mobile"], capsys)
    assert "no column 'mobile'" in err


@pytest.mark.parametrize("where", ["missing", "a file", "read-only"])
def test_a_journal_where_none_can_be(
    where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A journal in a folder that does not exist, under a file, or on a file system nobody
    can write (/proc, read-only even for root)."""
    folder = {"missing": tmp_path / "nope", "a file": tmp_path / "f", "read-only": Path("/proc")}
    (tmp_path / "f").write_text("")
    path = folder[where] / "j.journal"
    err = fails([*SEND, "--to", "380501234567", "--journal", str(path)], capsys)
    assert "cannot keep a journal" in err


@pytest.mark.parametrize("rate", ["0", "-3", "nine", "1.5", "99999999999999999999999"])
def test_a_rate_that_is_no_rate(rate: str, capsys: pytest.CaptureFixture[str]) -> None:
    """--rate 0 was silently 9; now it is refused."""
    err = fails([*SEND, "--to", "380501234567", "--rate", rate], capsys)
    assert "--rate" in err


@pytest.mark.parametrize("token", ["abc\r\nX-Evil: 1", "abc\n", "\tabc"])
def test_a_token_with_a_line_break(
    token: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A token with CR/LF would split the Authorization header: refused, never shown."""
    monkeypatch.setenv("SMSBRIDGE_SMSCLUB_TOKEN", token)
    err = fails([*SEND, "--to", "380501234567"], capsys)
    assert "line break" in err and "abc" not in err


@pytest.mark.parametrize("command", [["status", "smsclub", "123"], ["balance", "smsclub"]])
def test_calls_with_a_wrong_token_refused_port_or_wrong_url(
    command: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """status and balance: nothing listening (exit 2), a wrong base URL answering 404
    (exit 2), a wrong token (exit 1, the account refused); one line each, no group."""
    quick = RetryPolicy(backoff=0.001, max_backoff=0.001)
    monkeypatch.setattr("smsbridge._core.client.RetryPolicy", lambda: quick)
    fails(command, capsys, 2)
    with ThreadedFake(FakeWebcom(tokens=[TOKEN])) as other:  # no /sms/... here: 404
        monkeypatch.setenv("SMSBRIDGE_SMSCLUB_URL", other.url)
        assert "base URL" in fails(command, capsys, 2)
    with ThreadedFake(FakeSmsClub(tokens=["the-right-one"])) as fake:
        monkeypatch.setenv("SMSBRIDGE_SMSCLUB_URL", fake.url)
        assert "credentials" in fails(command, capsys, 1)
        assert fake.sent == []


def test_stdin_and_semicolons_and_named_columns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--to-file -` reads standard input; a ';' export with its own column names works with
    --phone-column and --text-column."""
    import io
    import sys

    data = "Mobile;Повідомлення\n380501234567;Привіт\n380501234568;Добрий день\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data.encode())))
    with ThreadedFake(FakeSmsClub(tokens=[TOKEN], rate_limit=None)) as fake:
        monkeypatch.setenv("SMSBRIDGE_SMSCLUB_URL", fake.url)
        argv = ["send", "smsclub", "--sender", "Shop", "--to-file", "-", "--json"]
        argv += ["--phone-column", "Mobile", "--text-column", "Повідомлення"]
        assert main(argv) == 0, capsys.readouterr().err
        assert {m.phone: m.text for m in fake.sent} == {
            "380501234567": "Привіт",
            "380501234568": "Добрий день",
        }


@pytest.mark.parametrize(
    "data", [b"name,x\nbob,1\n", b"phone\n3805012\xff34567\n", b'phone,text\n1,"' + b"x" * 200_000]
)
def test_standard_input_leaves_no_copy_behind_when_refused(
    data: bytes,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Standard input is copied to a temporary file to be read twice; a header with no phone
    column, bytes that are not UTF-8 or a field over the limit in its first lines refuse it
    (exit 2), and the copy, the caller's numbers, is gone too."""
    import io
    import sys
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    fails([*SEND, "--to-file", "-"], capsys)
    assert list(tmp_path.iterdir()) == []


def test_a_journal_another_run_holds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two runs on one journal at once would both send what neither had settled: the second
    exits 2 saying so, and sends nothing."""
    from smsbridge._campaign import Journal

    path = tmp_path / "c.journal"
    holder = Journal(path, exclusive=True)
    try:
        err = fails([*SEND, "--to", "380501234567", "--journal", str(path)], capsys)
    finally:
        holder.close()
    assert "another run is using the journal" in err


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--port", "99999"),
        ("--port", "-1"),
        ("--rate-limit", "x"),
        ("--rate-limit", "0"),
        ("--faults", "{bad"),
        ("--faults", '{"hang_after": 2}'),  # a chance is 0 to 1
        ("--faults", '{"hang_afterr": 0.1}'),  # a fault misspelt
        ("--template", "no-id"),
    ],
)
def test_a_fake_gateway_given_bad_options(
    option: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A fake gateway's bad option is exit 2 and one line naming it (a port out of range
    was a 38-line traceback)."""
    err = fails(["fake-gateway", "smsclub", option, value], capsys)
    assert option in err


def test_a_fake_gateway_on_a_port_taken(capsys: pytest.CaptureFixture[str]) -> None:
    """A port another socket holds is exit 1 and one line, not a traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        err = fails(["fake-gateway", "smsclub", "--port", str(port)], capsys, status=1)
    assert f"127.0.0.1:{port}" in err


def test_a_file_changed_while_it_is_sent_stops_before_a_row_of_the_new_one(
    tmp_path: Path,
) -> None:
    """A file written over while the campaign reads it (another export landing on the same
    name) would send rows of another list under the first one's count and journal: reading
    stops with an InputError before any of them, and a file changed between the check and
    the send is refused at once. A file renamed over it (sed -i) is not read: the open file
    is the checked one, read to its end; nor does a change of the file's metadata alone
    stop it (a chmod, a hard link, moved elsewhere: its bytes are read again and are the
    same)."""
    path = tmp_path / "list.csv"
    old = [f"38050{i:07d}" for i in range(6000)]
    path.write_text("phone\n" + "\n".join(old) + "\n")
    recipients = Recipients([], path, "phones")
    assert recipients.scan()[1] == 6000
    rows = recipients.rows()
    taken = [next(rows)[1] for _ in range(10)]
    path.write_text("phone\n" + "\n".join(f"38063{i:07d}" for i in range(6000)) + "\n")
    with pytest.raises(InputError, match=r"list\.csv changed while the campaign read it"):
        taken += [entry for _, entry in rows]
    assert taken == old[: len(taken)] and 10 <= len(taken) <= 4096
    with pytest.raises(InputError, match="changed while the campaign read it"):
        next(recipients.rows())  # changed since the scan: not a row read

    # written over at the same size, its modification time set back (touch -r, rsync -t):
    # the change time, which only the kernel sets, still tells
    path.write_text("phone\n" + "\n".join(old) + "\n")
    recipients = Recipients([], path, "phones")
    recipients.scan()
    rows = recipients.rows()
    next(rows)
    then = path.stat()
    path.write_text("phone\n" + "\n".join(f"38063{i:07d}" for i in range(6000)) + "\n")
    os.utime(path, ns=(then.st_atime_ns, then.st_mtime_ns))
    assert path.stat().st_size == then.st_size and path.stat().st_mtime_ns == then.st_mtime_ns
    with pytest.raises(InputError, match="changed while the campaign read it"):
        list(rows)

    recipients = Recipients([], path, "phones")
    recipients.scan()
    rows = recipients.rows()
    first = next(rows)[1]
    other = tmp_path / "other.csv"
    other.write_text("phone\n380671234567\n")
    os.replace(other, path)
    assert [first, *(entry for _, entry in rows)] == [f"38063{i:07d}" for i in range(6000)]

    path.write_text("phone\n" + "\n".join(old) + "\n")
    recipients = Recipients([], path, "phones")
    recipients.scan()
    rows = recipients.rows()
    first = next(rows)[1]
    os.chmod(path, 0o640)
    os.link(path, tmp_path / "backup.csv")
    os.rename(path, tmp_path / "sent.csv")
    assert [first, *(entry for _, entry in rows)] == old

    # the change time moving at every look costs one more read of the file, not one a look;
    # and once it moved, a later part rewritten (the modification time set back) still tells
    many = [f"38050{i:07d}" for i in range(60_000)]
    path.write_text("phone\n" + "\n".join(many) + "\n")
    recipients = Recipients([], path, "phones")
    recipients.scan()
    read = 0
    pread = os.pread

    def counted(fd: int, n: int, at: int) -> bytes:
        nonlocal read
        data = pread(fd, n, at)
        read += len(data)
        return data

    taken = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "pread", counted)
        for n, (_, entry) in enumerate(recipients.rows()):
            taken.append(entry)
            if n % 1000 == 0:
                os.chmod(path, 0o600 if n % 2000 else 0o640)
    assert taken == many and read <= 3 * path.stat().st_size
    recipients = Recipients([], path, "phones")
    recipients.scan()
    rows = recipients.rows()
    next(rows)
    os.chmod(path, 0o600)
    then = path.stat()
    with path.open("r+") as f:  # the last rows, other numbers of the same length
        f.seek(then.st_size - 13 * 100)
        f.write("".join(f"38063{i:07d}\n" for i in range(100)))
    os.utime(path, ns=(then.st_atime_ns, then.st_mtime_ns))
    with pytest.raises(InputError, match="changed while the campaign read it"):
        list(rows)


class _Full:
    """Standard output on a full disk."""

    def write(self, text: str) -> int:
        raise OSError(28, "No space left on device")

    def flush(self) -> None:
        pass


@pytest.mark.parametrize("stdout", [_Full(), None])
def test_an_unwritable_standard_output_is_one_line_not_a_traceback(
    stdout: object, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Standard output on a full disk, or closed (``>&-``): what was done stays done, and
    the command says in one line why its summary is missing, exit 1."""
    monkeypatch.setattr("sys.stdout", stdout)
    err = fails([*SEND, "--to", "380501234567", "--dry-run"], capsys, status=1)
    assert "standard output" in err
    for asked in (["--version"], ["--help"], ["send", "smsclub", "--help"]):  # not exit 0
        assert "standard output" in fails(asked, capsys, status=1)


def test_what_would_be_dropped_quietly_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A text column named beside a template, a param4 column, an empty gateway in a
    route and an empty message id were each dropped without a word: exit 2, one line."""
    monkeypatch.setenv("SMSBRIDGE_SMSPLUS_TOKEN", TOKEN)
    monkeypatch.setenv("SMSBRIDGE_SMSPLUS_URL", f"http://127.0.0.1:{free_port()}")
    template = ["send", "smsplus", "--sender", "Shop", "--template", "1"]
    err = fails([*template, "--text-column", "t", "--to", "994501234567"], capsys)
    assert "--text-column names a text" in err
    rows = tmp_path / "p.csv"
    rows.write_text("phone,param1,param2,param3,param4\n994501234567,a,b,c,d\n")
    err = fails([*template, "--to-file", str(rows), "--dry-run"], capsys)
    assert "the header has param4" in err
    for header, says in (("phone,param1,param 4", "param_4"), ("phone,param1,param1", "once")):
        rows.write_text(f"{header}\n994501234567,a,b\n")
        assert says in fails([*template, "--to-file", str(rows), "--dry-run"], capsys)
    route_template = ["send", "route", "--sender", "Shop", "--template", "1"]
    err = fails([*route_template, "--text-column", "t", "--to", "994501234567"], capsys)
    assert "--text-column names a text" in err
    route = ["send", "route", "--sender", "Shop", "--text", "Sale", "--to", "380501234567"]
    err = fails([*route, "--route", "UA=smsclub,,webcom"], capsys)
    assert "give REGION=GATEWAY" in err
    assert "a message id is empty" in fails(["status", "smsclub", " "], capsys)


def test_standard_input_closed_or_not_copied_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--to-file -`` with standard input closed (``<&-``) was an AttributeError's
    traceback, and a copy the system refused (``ulimit -f``, a full disk) an OSError's:
    exit 2, one line."""
    monkeypatch.setattr("sys.stdin", None)
    err = fails([*SEND, "--to-file", "-", "--dry-run"], capsys)
    assert "standard input is closed" in err

    def too_large(*args: object) -> None:
        raise OSError(27, "File too large")

    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"380501234567\n")))
    monkeypatch.setattr("smsbridge._cli.inputs.shutil.copyfileobj", too_large)
    err = fails([*SEND, "--to-file", "-", "--dry-run"], capsys)
    assert "cannot copy standard input: File too large" in err
