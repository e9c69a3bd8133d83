//! Binding a listener's socket: the configured address, or, for a listener given without an
//! address, one dual-stack socket on `[::]` that takes IPv4 clients too (as IPv4-mapped
//! addresses), which is how Mosquitto's `listener PORT` serves both families; with
//! `socket_domain` one family only. Also the listener's TCP options on each accepted socket.

use std::io;
use std::net::{Ipv6Addr, SocketAddr};

use log::info;
use mio::net::TcpListener;
use socket2::{Domain, Protocol, SockRef, Socket, Type};

use crate::config::{ListenerConfig, SocketDomain};

/// Sets `listener`'s `tcp_keepalive` and `tcp_user_timeout` on an accepted socket, so a
/// peer that vanished without FIN or RST (a half-open connection) is dropped by the kernel
/// even when MQTT keepalive is 0; the read then fails and the broker closes the connection
/// as for any socket error (the will is published).
pub fn set_tcp_options(socket: SockRef<'_>, listener: &ListenerConfig) -> io::Result<()> {
    if let Some(k) = listener.tcp_keepalive {
        let params = socket2::TcpKeepalive::new()
            .with_time(k.idle)
            .with_interval(k.interval)
            .with_retries(k.count);
        socket.set_tcp_keepalive(&params)?;
    }
    if let Some(timeout) = listener.tcp_user_timeout {
        socket.set_tcp_user_timeout(Some(timeout))?;
    }
    Ok(())
}

/// Pending connections the kernel queues per listener (std's default too).
const BACKLOG: i32 = 1024;

/// Binds `listener`'s socket, non-blocking, ready to register.
pub fn bind(listener: &ListenerConfig) -> io::Result<TcpListener> {
    let any6 = SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), listener.addr.port());
    match (listener.dual_stack, listener.socket_domain) {
        (true, None) => match bind_ipv6(any6, false) {
            Ok(socket) => return Ok(socket),
            // A port in use is in use for IPv4 too: say so rather than bind half.
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => return Err(e),
            Err(e) => info!("no IPv6 on this host ({e}): {} on IPv4 only", listener.addr),
        },
        (true, Some(SocketDomain::Ipv6)) => return bind_ipv6(any6, true),
        (false, Some(domain)) if (domain == SocketDomain::Ipv6) != listener.addr.is_ipv6() => {
            let why = format!(
                "listener {}: socket_domain {} does not match its address",
                listener.addr,
                if domain == SocketDomain::Ipv6 {
                    "ipv6"
                } else {
                    "ipv4"
                }
            );
            return Err(io::Error::new(io::ErrorKind::InvalidInput, why));
        }
        (false, Some(SocketDomain::Ipv6)) => return bind_ipv6(listener.addr, true),
        _ => {}
    }
    TcpListener::bind(listener.addr)
}

/// An IPv6 listening socket that takes IPv4 clients too unless `only_v6`, whatever
/// `net.ipv6.bindv6only` says.
fn bind_ipv6(addr: SocketAddr, only_v6: bool) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::IPV6, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_only_v6(only_v6)?;
    // As std's `TcpListener::bind`: a restart may bind while old connections linger.
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(TcpListener::from_std(socket.into()))
}
