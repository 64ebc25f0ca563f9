"""
Who a verified client certificate names: its subject CN, when that names
exactly one caller and the certificate is meant for client authentication.
Pure: the chain was verified by TLS before this runs.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from dockguard.names import NAME_RULE, is_plain_name

__all__ = ["IdentityRefused", "identity_from_certificate"]


class IdentityRefused(Exception):
    """
    A verified client certificate still does not name exactly one identity
    fit for client authentication.  C{str()} is a sentence for the log.
    """


def identity_from_certificate(cert: x509.Certificate) -> str:
    """
    The identity a verified client certificate names: its subject CN.

    @raise IdentityRefused: no CN or more than one; a CN outside the safe
        syntax; a CA certificate used as a client; an extended key usage that
        does not include clientAuth; a key usage without digitalSignature.
    """
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(cns) != 1:
        raise IdentityRefused(
            f"the certificate's subject has {len(cns)} common names; exactly one is required to name the caller"
        )
    cn = cns[0].value
    if not is_plain_name(cn):
        raise IdentityRefused(f"the certificate's common name {cn!r} is not a plain name ({NAME_RULE})")
    try:
        basic = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        pass
    else:
        if basic.value.ca:
            raise IdentityRefused(f"the certificate for {cn!r} is a CA certificate, not a client certificate")
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        pass
    else:
        if ExtendedKeyUsageOID.CLIENT_AUTH not in eku.value:
            raise IdentityRefused(
                f"the certificate for {cn!r} is not meant for client "
                "authentication (its extended key usage lacks clientAuth)"
            )
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    except x509.ExtensionNotFound:
        pass
    else:
        if not usage.value.digital_signature:
            raise IdentityRefused(f"the certificate for {cn!r} may not sign (key usage lacks digitalSignature)")
    return cn
