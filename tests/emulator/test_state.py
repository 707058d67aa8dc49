"""SqliteStore: records sealed at rest, master key file rules, reopen and concurrency."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from apckx.emulator.state import MemoryStore, SqliteStore, master_key_path
from apckx.errors import ConfigError, IntegrityError

SECRET_HEX = "0123456789abcdeffedcba98765432100123456789abcdeffedcba9876543210"


def _record() -> dict[str, object]:
    return {
        "KeyArn": "arn:aws:payment-cryptography:us-east-1:111122223333:key/abcdefghijklmnop",
        "material_hex": SECRET_HEX,
        "Enabled": True,
    }


def test_put_load_delete_roundtrip_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = SqliteStore(path)
    store.put("key", "111122223333", "us-east-1", "k1", _record())
    store.put("alias", "111122223333", "us-east-1", "alias/a", {"AliasName": "alias/a"})
    store.put("alias", "111122223333", "us-east-1", "alias/b", {"AliasName": "alias/b"})
    store.delete("alias", "111122223333", "us-east-1", "alias/b")
    store.delete("alias", "111122223333", "us-east-1", "alias/missing")  # not an error
    store.put("key", "111122223333", "us-east-1", "k1", {**_record(), "Enabled": False})
    store.close()

    reopened = SqliteStore(path)
    loaded = list(reopened.load())
    reopened.close()
    assert sorted(loaded, key=lambda row: row[0]) == [
        ("alias", "111122223333", "us-east-1", "alias/a", {"AliasName": "alias/a"}),
        ("key", "111122223333", "us-east-1", "k1", {**_record(), "Enabled": False}),
    ]


def test_no_cleartext_in_the_file_and_key_file_is_0600(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = SqliteStore(path)
    store.put("key", "111122223333", "us-east-1", "k1", _record())
    store.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("state.db*") if p.suffix != ".key")
    assert SECRET_HEX.encode() not in raw
    assert bytes.fromhex(SECRET_HEX) not in raw
    assert b"material_hex" not in raw
    key_file = master_key_path(path)
    assert key_file == tmp_path / "state.db.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(key_file.read_bytes()) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_refuses_a_key_file_readable_by_others(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    SqliteStore(path).close()
    master_key_path(path).chmod(0o644)
    with pytest.raises(ConfigError, match=r"mode 0644; it must be 0600"):
        SqliteStore(path)


def test_refuses_a_key_file_of_the_wrong_length(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    key_file = master_key_path(path)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"short")
    os.close(fd)
    with pytest.raises(ConfigError, match="must hold 32 bytes"):
        SqliteStore(path)


def test_wrong_master_key_is_detected_on_open(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = SqliteStore(path)
    store.put("key", "111122223333", "us-east-1", "k1", _record())
    store.close()
    master_key_path(path).write_bytes(os.urandom(32))
    with pytest.raises(IntegrityError, match="wrong master key"):
        SqliteStore(path)


def test_a_record_moved_to_another_id_fails_to_open(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = SqliteStore(path)
    store.put("key", "111122223333", "us-east-1", "k1", _record())
    store.close()
    db = sqlite3.connect(path)
    db.execute("UPDATE records SET ident = 'k2'")
    db.commit()
    db.close()
    reopened = SqliteStore(path)
    with pytest.raises(IntegrityError):
        list(reopened.load())
    reopened.close()


def test_not_a_database_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ConfigError, match="cannot open emulator state"):
        SqliteStore(path)


def test_concurrent_puts_lose_nothing(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.db")

    def writer(worker: int) -> None:
        for index in range(50):
            store.put("key", "111122223333", "us-east-1", f"w{worker}-{index}", {"n": index})

    threads = [threading.Thread(target=writer, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(list(store.load())) == 400
    store.close()


def test_state_survives_kill_9_mid_write(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    script = (
        "import os, sys\n"
        "from apckx.emulator.state import SqliteStore\n"
        "store = SqliteStore(sys.argv[1])\n"
        "for i in range(100000):\n"
        "    store.put('key', '111122223333', 'us-east-1', f'k{i}', {'n': i, 'pad': 'x' * 500})\n"
        "    if i == 200:\n"
        "        print('ready', flush=True)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    process.kill()
    process.wait()
    store = SqliteStore(path)
    loaded = list(store.load())
    store.close()
    assert len(loaded) >= 201
    assert {row[3] for row in loaded} >= {f"k{i}" for i in range(201)}


def test_memory_store_keeps_nothing() -> None:
    store = MemoryStore()
    store.put("key", "a", "r", "i", {"x": 1})
    assert list(store.load()) == []
    store.close()
