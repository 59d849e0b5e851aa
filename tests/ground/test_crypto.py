from __future__ import annotations

import pytest

from bss.crypto import Vault, generate_key, hash_api_key, key_id, load_keys
from bss.errors import ConfigurationError
from bss.settings import Settings


def test_a_secret_round_trips_and_is_not_stored_in_clear():
    vault = Vault([generate_key()])
    token = "1//refresh-token-value"
    stored = vault.encrypt(token)
    assert token not in stored
    assert vault.decrypt(stored) == token


def test_rotation_keeps_old_ciphertexts_readable_and_rewrites_them_under_the_new_key():
    # Given a secret stored under the old key
    old, new = generate_key(), generate_key()
    stored = Vault([old]).encrypt("client-secret")
    # When the new key is put first and the secret rotated
    both = Vault([new, old])
    rotated = both.rotate(stored)
    # Then the new key alone reads the rotated value, and the old value still reads with both
    assert Vault([new]).decrypt(rotated) == "client-secret"
    assert both.decrypt(stored) == "client-secret"
    with pytest.raises(ConfigurationError, match="cannot be decrypted"):
        Vault([new]).decrypt(stored)


def test_a_malformed_key_is_a_clear_configuration_error():
    with pytest.raises(ConfigurationError, match="not a Fernet key"):
        Vault(["not-a-key"])


def test_production_refuses_to_run_without_keys(tmp_path):
    settings = Settings(BSS_ENV="production", BSS_HOME=tmp_path, BSS_SECRET_KEYS="")
    with pytest.raises(ConfigurationError, match="BSS_SECRET_KEYS"):
        load_keys(settings)


def test_development_makes_a_key_file_once(tmp_path):
    settings = Settings(BSS_HOME=tmp_path, BSS_SECRET_KEYS="")
    first = load_keys(settings)
    assert load_keys(settings) == first
    assert oct((tmp_path / "secret.keys").stat().st_mode & 0o777) == "0o600"


def test_api_keys_are_stored_as_digests():
    assert hash_api_key("bss_abc") != "bss_abc"
    assert hash_api_key("bss_abc") == hash_api_key("bss_abc")
    assert hash_api_key("bss_abc") != hash_api_key("bss_abd")


def test_a_key_is_named_by_a_short_id_that_reveals_nothing_of_it():
    a, b = generate_key(), generate_key()
    assert key_id(a) == key_id(a + "\n") != key_id(b)
    assert key_id(a).startswith("k-") and len(key_id(a)) == 14
    assert key_id(a)[2:] not in a


def test_the_vault_tells_which_key_decrypts_a_secret():
    current, old, foreign = generate_key(), generate_key(), generate_key()
    vault = Vault([current, old])
    assert vault.key_ids == [key_id(current), key_id(old)]
    assert vault.key_id_of(vault.encrypt("s")) == key_id(current)
    assert vault.key_id_of(Vault([old]).encrypt("s")) == key_id(old)
    assert vault.key_id_of(Vault([foreign]).encrypt("s")) is None


def test_without_create_no_key_file_is_made(tmp_path):
    assert load_keys(Settings(BSS_HOME=tmp_path, BSS_SECRET_KEYS=""), create=False) == []
    assert not (tmp_path / "secret.keys").exists()
