"""The plain-language summary inside an export (``README.md``).

Per category it says what the data is, why it is processed, on what legal basis, how long
it is kept and who may receive it, as the privacy statement gives them (GDPR art. 15(1)),
and what each column means. It never mentions data that is withheld (a legal hold) or not
part of the answer (lawful-interception data): the subject's answer stays neutral.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lethe.policy.vocabulary import LegalBasis, Recipient

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from lethe.policy.models import Category

LEGAL_BASIS_WORDS = {
    LegalBasis.CONTRACT: "needed to perform the contract with you or your organisation "
    "(GDPR art. 6(1)(b))",
    LegalBasis.LEGAL_OBLIGATION: "needed to comply with a legal obligation (GDPR art. 6(1)(c))",
    LegalBasis.LEGITIMATE_INTEREST: "our legitimate interest, weighed against yours "
    "(GDPR art. 6(1)(f))",
    LegalBasis.CONSENT: "your consent, which you may withdraw at any time (GDPR art. 6(1)(a))",
}
RECIPIENT_WORDS = {
    Recipient.SUPPLIERS: "suppliers that help deliver the service, bound by contract to use "
    "the data only for that; outside the EEA only with the same safeguards",
    Recipient.AUTHORITIES: "authorities, only when the law obliges us (for example a criminal "
    "investigation)",
    Recipient.EMERGENCY_SERVICES: "the emergency number 112, which always receives the "
    "caller's number",
    Recipient.OTHER_CARRIERS: "other carriers, so that a withheld number stays withheld on "
    "their invoices",
}
RIGHT_WORDS = {
    "access": "Access: this package is the answer to it.",
    "portability": "Portability: this package holds the data processed with your consent or to "
    "perform the contract, in a common file format.",
}


def render_summary(
    *,
    header: Mapping[str, Any],
    included: Sequence[Category],
    counts: Mapping[str, Mapping[str, int]],
    columns: Mapping[str, Sequence[tuple[str, str, str]]],
    referred: Sequence[Category],
    file_format: str,
) -> str:
    """The summary as Markdown.

    :param header: request id, right, generated-at.
    :param included: the categories in the package.
    :param counts: rows and files per category id.
    :param columns: (source, column, description) per category id.
    :param referred: categories your organisation decides about (controller: client);
        requests about them go to that organisation.
    """
    right = str(header["right"])
    lines = [
        "# Your personal data",
        "",
        f"This package answers request `{header['request_id']}` ({right}), made on "
        f"{header['generated_at']}.",
        "",
        RIGHT_WORDS.get(right, ""),
        "",
        f"- `data/<category>.{file_format}`: your data, one file per category "
        + (
            "(each source with its columns explained and its rows)."
            if file_format == "json"
            else "(the `source` column says where each row comes from)."
        ),
        "- `recordings/<category>/...`: recordings of calls, as audio files.",
        "- `manifest.json`: every file in this package with its size and SHA-256 checksum.",
        "",
        "## What we hold and why",
    ]
    for category in included:
        count = counts.get(category.id, {"rows": 0, "files": 0})
        recipients = [RECIPIENT_WORDS[r] for r in category.recipients] or ["nobody outside us"]
        lines += [
            "",
            f"### {category.title}",
            "",
            category.description,
            "",
            f"- **Why:** {category.purpose}",
            f"- **Legal basis:** {LEGAL_BASIS_WORDS[category.legal_basis]}",
            f"- **How long we keep it:** {category.retention.human()}",
            f"- **Who may receive it:** {'; '.join(recipients)}",
            f"- **In this package:** {count['rows']} rows"
            + (f", {count['files']} recordings" if count["files"] else ""),
        ]
        described = [c for c in columns.get(category.id, ()) if c[2]]
        if described:
            lines += ["", "| source | column | meaning |", "|---|---|---|"]
            lines += [f"| {s} | `{c}` | {d} |" for s, c, d in described]
    if referred:
        lines += [
            "",
            "## Data your organisation decides about",
            "",
            "We process the following on behalf of the organisation that ordered the "
            "service, which decides what happens to it. Please send your request about it to "
            "that organisation; we have informed it of your request.",
            "",
        ]
        lines += [f"- {category.title}" for category in referred]
    lines += [
        "",
        "## Your rights",
        "",
        "You may ask us to correct data that is wrong, to erase it, to restrict or object to "
        "its processing, and to receive a copy in a common file format. You may also "
        "complain to the Dutch supervisory authority, the Autoriteit Persoonsgegevens.",
        "",
    ]
    return "\n".join(lines)
