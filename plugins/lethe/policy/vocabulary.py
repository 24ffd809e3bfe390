"""Closed vocabularies of the policy catalog, each a ``str`` enum.

The values are what the YAML files spell; they also appear in the ledger and in export
summaries, so they are stable, lower-case and snake_case.
"""

from __future__ import annotations

from enum import StrEnum


class FamilyId(StrEnum):
    """A service family: one policy file (``include/policies/<family>.yaml``) and one DAG."""

    USAGE_RECORDS = "usage_records"
    CALL_RECORDINGS = "call_recordings"
    SUPPORT_TICKETS = "support_tickets"
    WEBSITE = "website"
    LAWFUL_INTERCEPT = "lawful_intercept"
    CONTRACT_DATA = "contract_data"
    #: Not a row of the statement: the access and portability exports lethe itself makes.
    SUBJECT_EXPORTS = "subject_exports"


class Controller(StrEnum):
    """Who decides about the data (the statement's column "Verantwoordelijke").

    ``provider`` is the ICT provider itself; ``client`` is the customer organisation that
    ordered the service and supplied the data ("opdrachtgevende partij"), for which the
    provider is a processor.
    """

    PROVIDER = "provider"
    CLIENT = "client"


class LegalBasis(StrEnum):
    """The ground for processing (the statement's column "Grond voor verwerking")."""

    CONTRACT = "contract"
    LEGAL_OBLIGATION = "legal_obligation"
    LEGITIMATE_INTEREST = "legitimate_interest"
    CONSENT = "consent"


class Right(StrEnum):
    """A data-subject right (the statement's section "Welke rechten u heeft").

    The order of the members is the canonical order in which rights are listed.
    """

    ACCESS = "access"
    RECTIFICATION = "rectification"
    ERASURE = "erasure"
    RESTRICTION = "restriction"
    PORTABILITY = "portability"
    OBJECTION = "objection"
    WITHDRAW_CONSENT = "withdraw_consent"


#: Every right a subject request may exercise, in canonical order (the control schema's
#: CHECK on ``privacy.subject_requests.request_right`` lists exactly these; a test checks).
REQUEST_RIGHTS: tuple[str, ...] = tuple(right.value for right in Right)
#: The rights answered by an export of the subject's data (the ``subject_export`` DAG).
EXPORT_RIGHTS: tuple[str, ...] = (Right.ACCESS.value, Right.PORTABILITY.value)
#: The routes of the ``subject_requests`` DAG (task ids ``claim_<route>`` and ``<route>``)
#: and the rights each carries out; every request right has exactly one route.
ROUTES: dict[str, tuple[str, ...]] = {
    "export": EXPORT_RIGHTS,
    "erase": (Right.ERASURE.value, Right.OBJECTION.value, Right.WITHDRAW_CONSENT.value),
    "restrict": (Right.RESTRICTION.value,),
    "rectify": (Right.RECTIFICATION.value,),
}


class Identity(StrEnum):
    """A kind of value that identifies a data subject in a store."""

    EMAIL = "email"
    PHONE = "phone"
    CUSTOMER_ID = "customer_id"
    CONTRACT_ID = "contract_id"
    IP = "ip"
    VISITOR_ID = "visitor_id"
    IMEI = "imei"
    ICCID = "iccid"
    MAC = "mac"


class Recipient(StrEnum):
    """Who may receive the data (the statement's section on sharing)."""

    #: Third-party suppliers under contractual and organisational measures; outside the
    #: EEA only with the same safeguards as inside it.
    SUPPLIERS = "suppliers"
    #: Authorities, when the law obliges it (for example a criminal investigation).
    AUTHORITIES = "authorities"
    #: The emergency number 112: the caller's number is always passed on.
    EMERGENCY_SERVICES = "emergency_services"
    #: Other carriers: a withheld number is passed on so that it stays withheld on their
    #: invoices.
    OTHER_CARRIERS = "other_carriers"


class StoreKind(StrEnum):
    """The kind of system a category's data lives in."""

    POSTGRES = "postgres"
    SFTP = "sftp"
    S3 = "s3"


class RetentionKind(StrEnum):
    """How a retention period is stated."""

    FIXED = "fixed"
    UNTIL_SERVICE_END = "until_service_end"
    CUSTOMER_DEFINED = "customer_defined"


class FileTimeSource(StrEnum):
    """Where an SFTP file's age comes from."""

    MTIME = "mtime"
    NAME = "name"


class KeyTimeSource(StrEnum):
    """Where an S3 object's age comes from."""

    KEY = "key"
    LAST_MODIFIED = "last_modified"


class ObjectFormat(StrEnum):
    """The content format of S3 objects whose rows carry subject identities."""

    CSV = "csv"
    JSONL = "jsonl"
