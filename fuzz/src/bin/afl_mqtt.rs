//! AFL++ driver of [`fleetwatch_fuzz::target_mqtt`] (`cargo afl build --features afl`).

fn main() {
    afl::fuzz!(|data: &[u8]| {
        fleetwatch_fuzz::target_mqtt(data);
    });
}
