//! Binding a listener's socket: the configured address, or, for a listener given without an
//! address, one dual-stack socket on `[::]` that takes IPv4 clients too (as IPv4-mapped
//! addresses), which is how Mosquitto's `listener PORT` serves both families.

use std::io;
use std::net::{Ipv6Addr, SocketAddr};

use log::info;
use mio::net::TcpListener;
use socket2::{Domain, Protocol, Socket, Type};

use crate::config::ListenerConfig;

/// Pending connections the kernel queues per listener (std's default too).
const BACKLOG: i32 = 1024;

/// Binds `listener`'s socket, non-blocking, ready to register.
pub fn bind(listener: &ListenerConfig) -> io::Result<TcpListener> {
    if listener.dual_stack {
        let any = SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), listener.addr.port());
        match bind_dual_stack(any) {
            Ok(socket) => return Ok(socket),
            // A port in use is in use for IPv4 too: say so rather than bind half.
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => return Err(e),
            Err(e) => info!("no IPv6 on this host ({e}): {} on IPv4 only", listener.addr),
        }
    }
    TcpListener::bind(listener.addr)
}

/// An IPv6 listening socket that accepts IPv4 too, whatever `net.ipv6.bindv6only` says.
fn bind_dual_stack(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::IPV6, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_only_v6(false)?;
    // As std's `TcpListener::bind`: a restart may bind while old connections linger.
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(TcpListener::from_std(socket.into()))
}
