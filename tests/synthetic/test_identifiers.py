"""Synthetic identifiers are well-formed; recordings are valid WAV files; the CLI parses."""

from __future__ import annotations

import io
import random
import re
import wave
from datetime import date

import pytest

from lethe.domain.identities import normalise
from lethe_dev.synthetic import identifiers as ids
from lethe_dev.synthetic.__main__ import build_parser, main
from lethe_dev.synthetic.generator import SyntheticProvider
from lethe_dev.synthetic.loaders import copy_chunks, copy_field
from lethe_dev.synthetic.wav import wav_bytes

AS_OF = date(2025, 6, 30)


@pytest.fixture(scope="module")
def provider() -> SyntheticProvider:
    return SyntheticProvider(seed=7, scale=1, as_of=AS_OF)


class TestIdentifiers:
    def test_luhn(self):
        assert ids.luhn_check_digit("7992739871") == "3"  # the textbook example
        assert ids.luhn_valid("79927398713")
        assert not ids.luhn_valid("79927398710")

    def test_formats(self):
        rng = random.Random(1)
        for _ in range(200):
            mobile = ids.mobile_number(rng)
            assert re.fullmatch(r"\+316[1-58][0-9]{7}", mobile)
            landline = ids.landline_number(rng, "20")
            assert re.fullmatch(r"\+3120[2-9][0-9]{6}", landline)
            # As a person would type them into a form, both pass the strict phone check.
            assert normalise("phone", "0" + mobile[3:]) == mobile
            assert normalise("phone", landline) == landline
            code = ids.postal_code(rng, "10")
            assert re.fullmatch(r"10\d\d [A-Z]{2}", code)
            assert code[-2:] not in {"SA", "SD", "SS"}
            imei = ids.imei(rng)
            assert len(imei) == 15
            assert ids.luhn_valid(imei)
            iccid = ids.iccid(rng, rng.randrange(10**6))
            assert iccid.startswith("8931")
            assert len(iccid) == 19
            assert ids.luhn_valid(iccid)
            assert re.fullmatch(r"([0-9a-f]{2}:){5}[0-9a-f]{2}", ids.mac_address(rng))
            assert re.fullmatch(r"\d{8}", ids.kvk_number(rng))

    def test_generated_rows_are_well_formed(self, provider):
        e164 = re.compile(r"\+31\d{9}")
        for row in provider.table_rows("sims"):
            assert ids.luhn_valid(row[3])
            assert row[3].startswith("8931")
            assert row[4] is None or ids.luhn_valid(row[4])
            assert e164.fullmatch(row[5])
        for row in provider.table_rows("contact_persons"):
            assert e164.fullmatch(row[3])
            assert row[4] == row[4].lower()
            assert re.fullmatch(r"[a-z0-9.]+@[a-z0-9-]+\.nl", row[4])
        for row in provider.table_rows("delivery_addresses"):
            assert re.fullmatch(r"\d{4} [A-Z]{2}", row[5])
        for row in provider.table_rows("billing_accounts"):
            assert row[2].endswith(" B.V.")
            assert re.fullmatch(r"\d{8}", row[4])


def test_recordings_are_valid_wav_files(provider):
    for rec in list(provider.recordings())[:20]:
        with wave.open(io.BytesIO(rec.data)) as wav:
            assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 1, 8000)
            assert 200 <= wav.getnframes() < 600
    assert wav_bytes(440, 300) == wav_bytes(440, 300)


def test_copy_text_format_escapes():
    assert copy_field(None) == "\\N"
    assert copy_field("a\tb\nc\\d") == "a\\tb\\nc\\\\d"
    # the array literal escapes its quotes, and COPY's text format escapes those backslashes
    assert copy_field(["Microsoft 365", 'say "hi"']) == r'{"Microsoft 365","say \\"hi\\""}'
    assert copy_field(True) == "t"
    assert b"".join(copy_chunks([(1, "x"), (2, None)])) == b"1\tx\n2\t\\N\n"


def test_cli_parses_and_digests(capsys):
    args = build_parser().parse_args(
        ["seed", "--scale", "2", "--seed", "5", "--as-of", "2025-01-31", "--stores", "postgres,s3"]
    )
    assert (args.scale, args.seed, args.as_of, args.stores) == (
        2,
        5,
        date(2025, 1, 31),
        ["postgres", "s3"],
    )
    with pytest.raises(SystemExit):
        build_parser().parse_args(["seed", "--stores", "ftp"])
    assert main(["digest", "--seed", "7", "--as-of", AS_OF.isoformat()]) == 0
    assert capsys.readouterr().out.strip() == SyntheticProvider(seed=7, as_of=AS_OF).digest()


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="scale"):
        SyntheticProvider(scale=0, as_of=AS_OF)
    with pytest.raises(TypeError, match="as_of"):
        SyntheticProvider(as_of="2025-01-01")  # type: ignore[arg-type]
