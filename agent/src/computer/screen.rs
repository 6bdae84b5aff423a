//! The size a screenshot is sent at, and the way back. The model answers in the pixel space of
//! the image it was sent; an image larger than the service takes is resized there, and clicks
//! drift by the ratio the client never learns. So the agent sends the largest size the service
//! takes as it is (at the viewport's aspect ratio, never larger than the viewport) and maps every
//! coordinate back itself.
//!
//! Limits (Anthropic's vision documentation): an image's long edge at most 1568 px and its 28 px
//! patches (`ceil(w/28) * ceil(h/28)`) at most 1568; within both, an image is not resized.

/// The longest edge sent.
pub const MAX_LONG_EDGE: u32 = 1568;
/// The side of the square patches an image is read in.
pub const PATCH: u32 = 28;
/// The most patches sent.
pub const MAX_PATCHES: u32 = 1568;

/// A point in the page's viewport, in CSS pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub x: f64,
    pub y: f64,
}

/// The viewport (CSS pixels) and the size its screenshots are sent at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scale {
    pub viewport: (u32, u32),
    pub sent: (u32, u32),
}

fn patches(w: u32, h: u32) -> u32 {
    w.div_ceil(PATCH) * h.div_ceil(PATCH)
}

impl Scale {
    /// The largest size at the viewport's aspect ratio, no larger than the viewport, within the
    /// limits (a binary search on the width: both limits only grow with it).
    pub fn for_viewport(width: u32, height: u32) -> Scale {
        let (width, height) = (width.max(1), height.max(1));
        let height_at = |w: u32| ((u64::from(w) * u64::from(height) + u64::from(width) / 2) / u64::from(width)).max(1) as u32;
        let fits = |w: u32| {
            let h = height_at(w);
            w.max(h) <= MAX_LONG_EDGE && patches(w, h) <= MAX_PATCHES
        };
        let (mut lo, mut hi) = (1, width);
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if fits(mid) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        Scale { viewport: (width, height), sent: (lo, height_at(lo)) }
    }

    /// Whether screenshots are sent as captured.
    pub fn is_identity(&self) -> bool {
        self.viewport == self.sent
    }

    /// A pixel `[x, y]` of the image sent, as the viewport's point; refused outside the image
    /// (the model's mistake, which it is told).
    pub fn to_viewport(&self, x: i64, y: i64) -> Result<Point, String> {
        let (w, h) = self.sent;
        if x < 0 || y < 0 || x >= i64::from(w) || y >= i64::from(h) {
            return Err(format!("[{x}, {y}] is outside the {w}x{h} screenshot"));
        }
        Ok(Point { x: x as f64 * f64::from(self.viewport.0) / f64::from(w), y: y as f64 * f64::from(self.viewport.1) / f64::from(h) })
    }

    /// A viewport point as a pixel of the image sent (what the model would name for it).
    pub fn to_image(&self, p: Point) -> (i64, i64) {
        let (w, h) = self.sent;
        ((p.x * f64::from(w) / f64::from(self.viewport.0)).round() as i64, (p.y * f64::from(h) / f64::from(self.viewport.1)).round() as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_viewport_within_the_limits_is_sent_as_it_is() {
        for (w, h) in [(1280, 800), (1024, 768), (320, 240)] {
            let s = Scale::for_viewport(w, h);
            assert!(s.is_identity(), "{s:?}");
        }
    }

    #[test]
    fn a_larger_viewport_is_sent_at_the_largest_size_within_both_limits() {
        // 16:9 full HD: the patch budget binds (52 x 30 = 1560 patches), as Anthropic's own
        // reference size for this ratio.
        assert_eq!(Scale::for_viewport(1920, 1080).sent, (1456, 819));
        for (w, h) in [(1920, 1080), (2560, 1440), (3840, 2160), (1600, 2160), (3840, 240)] {
            let s = Scale::for_viewport(w, h);
            let (sw, sh) = s.sent;
            assert!(sw.max(sh) <= MAX_LONG_EDGE && patches(sw, sh) <= MAX_PATCHES, "{s:?}");
            // The aspect ratio stays within a pixel's rounding.
            assert!((f64::from(sw) / f64::from(sh) - f64::from(w) / f64::from(h)).abs() < f64::from(w) / f64::from(h) / f64::from(sh), "{s:?}");
            // One pixel wider would break a limit.
            let wider = sw + 1;
            let taller = ((u64::from(wider) * u64::from(h) + u64::from(w) / 2) / u64::from(w)) as u32;
            assert!(wider > w || wider.max(taller) > MAX_LONG_EDGE || patches(wider, taller) > MAX_PATCHES, "{s:?}");
        }
    }

    #[test]
    fn the_models_pixels_map_back_to_the_viewport_and_outside_is_refused() {
        let s = Scale::for_viewport(1920, 1080);
        let p = s.to_viewport(728, 400).unwrap();
        assert!((p.x - 960.0).abs() < 1.5 && (p.y - 527.5).abs() < 1.5, "{p:?}");
        assert_eq!(s.to_image(p), (728, 400));
        assert!(s.to_viewport(1456, 10).unwrap_err().contains("outside the 1456x819 screenshot"));
        assert!(s.to_viewport(-1, 10).is_err());
        let same = Scale::for_viewport(1280, 800);
        assert_eq!(same.to_viewport(100, 200).unwrap(), Point { x: 100.0, y: 200.0 });
    }
}
