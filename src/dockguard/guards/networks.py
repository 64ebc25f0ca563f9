"""Network create and connect: drivers and options that reach the host, and the network joined.

A network create needs a C{networks} pattern for its C{Name}, and its
driver in C{network_drivers} unless it is C{bridge} or C{overlay} with
plain options only: no option that names a host interface or bridge, no
C{ConfigFrom}, no C{Ingress}, no subnet of a bridge's own (it becomes a
route on the host); an IPAM driver other than C{default} needs its name
there. A connect's network is in its path (L{dockguard.meaning}); its
body's C{EndpointConfig.NetworkID} is judged as a reference.
"""

from __future__ import annotations

from dockguard.guards.allowance import ANY, Allowance
from dockguard.guards.gojson import GoObject, as_bool, as_list, as_object, as_str, as_str_map
from dockguard.guards.networkrefs import judge_network_name, judge_network_ref
from dockguard.guards.verdict import Refusal, show

__all__ = ["judge_network_connect", "judge_network_create"]


_PLAIN_NETWORK_DRIVERS = frozenset({"bridge", "overlay"})
#: Options of bridge and overlay networks that attach to no host interface and
#: leave Docker's NAT and firewall in place. Any other option (a host bridge
#: named by C{com.docker.network.bridge.name}, gateway modes, trusted host
#: interfaces, VXLAN IDs, options a newer daemon adds) needs the driver in
#: C{network_drivers}.
_PLAIN_NETWORK_OPTIONS = frozenset(
    {
        "com.docker.network.bridge.enable_icc",
        "com.docker.network.bridge.enable_ip_masquerade",
        "com.docker.network.bridge.host_binding_ipv4",
        "com.docker.network.bridge.inhibit_ipv4",
        "com.docker.network.driver.mtu",
        "com.docker.network.container_iface_prefix",
        "com.docker.network.enable_ipv6",
        "encrypted",
    }
)


def _network_driver_open(name: str, allowance: Allowance) -> bool:
    return ANY in allowance.network_drivers or name in allowance.network_drivers


def judge_network_create(document: GoObject, allowance: Allowance) -> None:
    """The body of C{POST /networks/create}."""
    name = as_str(document.get("Name"), "Name")
    driver = as_str(document.get("Driver"), "Driver")
    effective = driver or "bridge"  # the daemon's default driver on Linux
    opened = _network_driver_open(effective, allowance)
    fix = f'add "{show(effective)}" to network_drivers in the group\'s guards to allow it'
    if effective not in _PLAIN_NETWORK_DRIVERS and not opened:
        raise Refusal(
            "Driver",
            "network_drivers",
            f"Driver is {show(driver)}: network drivers other than bridge and overlay (macvlan, ipvlan, "
            f"plugins) can put containers on the host's interfaces, outside Docker's NAT and firewall ({fix})",
        )
    options = as_str_map(document.get("Options"), "Options")
    ipam = as_object(document.get("IPAM"), "IPAM")
    if ipam is not None:
        ipam_driver = as_str(ipam.get("Driver"), "IPAM.Driver")
        if ipam_driver not in ("", "default") and not _network_driver_open(ipam_driver, allowance):
            raise Refusal(
                "IPAM.Driver",
                "network_drivers",
                f"IPAM.Driver is {show(ipam_driver)}: IPAM drivers other than the default are plugins that "
                f'hand out addresses of their own choosing (add "{show(ipam_driver)}" to network_drivers '
                "in the group's guards to allow it)",
            )
        config_only = as_bool(document.get("ConfigOnly"), "ConfigOnly")
        if effective == "bridge" and not opened and not config_only:
            _judge_bridge_addresses(ipam, fix)
    config_from = as_object(document.get("ConfigFrom"), "ConfigFrom")
    ingress = as_bool(document.get("Ingress"), "Ingress")
    if not opened:
        _judge_network_options(options, config_from, ingress, effective, fix)
    judge_network_name(name, "Name", allowance, "creates")


_ADDRESS_FIELDS = ("Subnet", "IPRange", "Gateway", "AuxiliaryAddresses")


def _judge_bridge_addresses(ipam: GoObject, fix: str) -> None:
    """
    A bridge network's subnet becomes a route in the host's own routing table,
    and the daemon does not check a subnet it is given: one that covers the
    host's gateway or LAN takes the host's traffic. Pools the daemon picks
    itself avoid the host's routes.
    """
    for index, entry in enumerate(as_list(ipam.get("Config"), "IPAM.Config")):
        config = as_object(entry, f"IPAM.Config[{index}]")
        for name in _ADDRESS_FIELDS if config is not None else ():
            value = config.get(name) if config is not None else None
            if value not in (None, "") and value != {} and not (isinstance(value, GoObject) and not len(value)):
                field = f"IPAM.Config[{index}].{name}"
                raise Refusal(
                    field,
                    "network_drivers",
                    f"{field} chooses the bridge's addresses: a bridge's subnet becomes a route on the host, "
                    "and one that covers the host's gateway or network takes the host's own traffic; leave "
                    f"the subnet to the daemon, which avoids the host's routes ({fix})",
                )


def _judge_network_options(
    options: GoObject, config_from: GoObject | None, ingress: bool, effective: str, fix: str
) -> None:
    for key, value in options.pairs:
        if key not in _PLAIN_NETWORK_OPTIONS:
            raise Refusal(
                f"Options.{key}",
                "network_drivers",
                f"{show(f'Options.{key}')} is {show(value)}, not one of the plain {effective} options: it may attach the "
                "network to a host interface (com.docker.network.bridge.name names an existing host bridge, "
                "parent a host interface) or leave Docker's NAT and firewall; plain options are "
                f"{', '.join(sorted(_PLAIN_NETWORK_OPTIONS))} ({fix})",
            )
    if config_from is not None:
        raise Refusal(
            "ConfigFrom",
            "network_drivers",
            "ConfigFrom takes the network's configuration from a config-only network, which dockguard does "
            f"not read (it may name a host interface: an administrator's macvlan parent) ({fix})",
        )
    if ingress:
        raise Refusal(
            "Ingress",
            "network_drivers",
            f"Ingress is true: the swarm's routing mesh carries every service's published ports ({fix})",
        )


def judge_network_connect(document: GoObject, allowance: Allowance) -> None:
    """The body of C{POST /networks/{id}/connect}."""
    # The network is the path's (meaning.py); a stopped container keeps
    # EndpointConfig as sent, and at start the daemon joins its NetworkID
    # instead of that network (getNetworkID).
    endpoint = as_object(document.get("EndpointConfig"), "EndpointConfig")
    if endpoint is not None:
        network_id = as_str(endpoint.get("NetworkID"), "EndpointConfig.NetworkID")
        if network_id:
            judge_network_ref(network_id, "EndpointConfig.NetworkID", allowance)
