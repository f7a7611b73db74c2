//! WAIT: until enough replicas acknowledged the writes so far.

use bytes::Bytes;

use crate::commands;
use crate::protocol::Out;
use crate::server::conn::Conn;

impl Conn<'_> {
    /// WAIT numreplicas timeout: blocks until enough replicas acknowledged
    /// every write made so far, or the timeout.
    pub(crate) async fn wait_replicas(&mut self, args: &[Bytes]) -> Out {
        use crate::replication::master;
        let mut out = Out::new(self.client.resp3);
        let (n, timeout) = match commands::replication::wait_args(args) {
            Ok(v) => v,
            Err(e) => {
                out.err(e);
                return out;
            }
        };
        if crate::replication::replica::is_replica() {
            out.err(commands::replication::WAIT_ON_REPLICA);
            return out;
        }
        let target = master::current_offset();
        let deadline = (timeout > 0).then(|| crate::storage::now_ms() + timeout as u64);
        let mut asked = false;
        loop {
            let count = master::acked(target);
            if count as i64 >= n || deadline.is_some_and(|d| crate::storage::now_ms() >= d) {
                out.int(count as i64);
                return out;
            }
            if !asked {
                master::request_getack();
                asked = true;
            }
            glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
        }
    }
}
