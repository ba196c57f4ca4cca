//! Credit accounting and MessageId assignment ([MS-SMB2] 3.2.4.1.5, 3.2.5.1.4), kept free of
//! I/O so it can be tested on its own.

/// The client's view of the server's credit window.
///
/// Each request consumes `max(CreditCharge, 1)` credits and as many consecutive MessageIds;
/// every response (interim STATUS_PENDING ones included) grants its CreditResponse back.
#[derive(Debug, Clone)]
pub struct CreditWindow {
    next_message_id: u64,
    available: u32,
    outstanding: usize,
    target: u16,
}

impl CreditWindow {
    /// A fresh connection: one credit, MessageId 0 next; `target` is how many credits the
    /// client asks the server to let it hold.
    pub fn new(target: u16) -> Self {
        CreditWindow {
            next_message_id: 0,
            available: 1,
            outstanding: 0,
            target: target.max(1),
        }
    }

    /// Credits available now.
    pub fn available(&self) -> u32 {
        self.available
    }

    /// Requests sent whose final response has not come yet.
    pub fn outstanding(&self) -> usize {
        self.outstanding
    }

    /// The MessageId the next request will get.
    pub fn next_message_id(&self) -> u64 {
        self.next_message_id
    }

    /// Takes credits for requests with these charges (a compound takes all at once):
    /// returns the first MessageId of each, or `None` when there are not enough credits now.
    pub fn try_acquire(&mut self, charges: &[u16]) -> Option<Vec<u64>> {
        let need: u32 = charges.iter().map(|&c| c.max(1) as u32).sum();
        if need > self.available {
            return None;
        }
        self.available -= need;
        let mut ids = Vec::with_capacity(charges.len());
        for &c in charges {
            ids.push(self.next_message_id);
            self.next_message_id = self.next_message_id.wrapping_add(c.max(1) as u64);
        }
        self.outstanding += charges.len();
        Some(ids)
    }

    /// True when waiting for credits can never succeed: none available and no request
    /// outstanding whose response could grant some.
    pub fn starved(&self, charges: &[u16]) -> bool {
        let need: u32 = charges.iter().map(|&c| c.max(1) as u32).sum();
        need > self.available && self.outstanding == 0
    }

    /// The CreditRequest to send with a request of this charge: its own charge back, plus a
    /// top-up toward the target.
    pub fn credit_request(&self, charge: u16) -> u16 {
        let own = charge.max(1);
        let held = self.available.saturating_add(self.outstanding as u32);
        let top_up = (self.target as u32).saturating_sub(held).min(256) as u16;
        own.saturating_add(top_up)
    }

    /// A response granted `credits`; `final_response` is false for interim STATUS_PENDING.
    pub fn granted(&mut self, credits: u16, final_response: bool) {
        self.available = self.available.saturating_add(credits as u32);
        if final_response {
            self.outstanding = self.outstanding.saturating_sub(1);
        }
    }

    /// A request was given up without a response (its credits are lost, as on the server).
    pub fn abandoned(&mut self) {
        self.outstanding = self.outstanding.saturating_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_advance_by_the_charge_of_each_request() {
        let mut w = CreditWindow::new(64);
        assert_eq!(w.try_acquire(&[0]), Some(vec![0]));
        assert_eq!(w.try_acquire(&[1]), None);
        w.granted(10, true);
        assert_eq!(w.available(), 10);
        // A 200 KiB read charges 4 credits and takes MessageIds 1..=4.
        assert_eq!(w.try_acquire(&[4]), Some(vec![1]));
        assert_eq!(w.next_message_id(), 5);
        assert_eq!(w.available(), 6);
        // A compound of three takes consecutive ids.
        assert_eq!(w.try_acquire(&[1, 2, 1]), Some(vec![5, 6, 8]));
        assert_eq!(w.available(), 2);
        assert_eq!(w.outstanding(), 4);
        assert_eq!(w.try_acquire(&[3]), None);
    }

    #[test]
    fn interim_responses_grant_credits_but_keep_the_request_outstanding() {
        let mut w = CreditWindow::new(64);
        w.try_acquire(&[1]).unwrap();
        assert_eq!(w.available(), 0);
        w.granted(5, false);
        assert_eq!(w.available(), 5);
        assert_eq!(w.outstanding(), 1);
        w.granted(0, true);
        assert_eq!(w.outstanding(), 0);
    }

    #[test]
    fn starvation_is_detected_only_when_nothing_can_grant_credits() {
        let mut w = CreditWindow::new(64);
        w.try_acquire(&[1]).unwrap();
        assert!(!w.starved(&[1]), "a response is still due");
        w.granted(0, true);
        assert!(w.starved(&[1]));
    }

    #[test]
    fn credit_request_asks_for_the_charge_plus_a_top_up_to_the_target() {
        let mut w = CreditWindow::new(64);
        assert_eq!(w.credit_request(1), 1 + 63);
        w.granted(100, true);
        assert_eq!(w.credit_request(4), 4);
    }
}
