//! The scannable safety-number code as a QR image: SVG, PNG and a terminal form.
//! The payload goes into the QR code as raw bytes (byte mode).

use qrcode::render::{svg, unicode};
use qrcode::{Color, EcLevel, QrCode};

use crate::error::FingerprintError;

/// A QR code built from a payload.
pub struct QrCodeImage {
    code: QrCode,
}

impl std::fmt::Debug for QrCodeImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QrCodeImage")
            .field("modules", &self.code.width())
            .finish()
    }
}

/// Quiet zone in modules around the code (the QR standard asks for 4).
const QUIET: usize = 4;

impl QrCodeImage {
    /// Encode `payload` at error-correction level M.
    pub fn new(payload: &[u8]) -> Result<Self, FingerprintError> {
        let code = QrCode::with_error_correction_level(payload, EcLevel::M)
            .map_err(|e| FingerprintError::Render(e.to_string()))?;
        Ok(QrCodeImage { code })
    }

    /// Modules per side (without quiet zone).
    pub fn width(&self) -> usize {
        self.code.width()
    }

    /// An SVG document.
    pub fn to_svg(&self) -> String {
        self.code
            .render::<svg::Color<'_>>()
            .min_dimensions(200, 200)
            .dark_color(svg::Color("#000000"))
            .light_color(svg::Color("#ffffff"))
            .build()
    }

    /// Text for a terminal (two modules per character row, Unicode half blocks).
    pub fn to_terminal(&self) -> String {
        self.code
            .render::<unicode::Dense1x2>()
            .dark_color(unicode::Dense1x2::Light)
            .light_color(unicode::Dense1x2::Dark)
            .build()
    }

    /// An 8-bit greyscale PNG, `scale` pixels per module (at least 1), with quiet zone.
    pub fn to_png(&self, scale: usize) -> Result<Vec<u8>, FingerprintError> {
        let scale = scale.max(1);
        let w = self.code.width();
        let colors = self.code.to_colors();
        let side = (w + 2 * QUIET) * scale;
        let mut pixels = vec![255u8; side * side];
        for (i, c) in colors.iter().enumerate() {
            if *c == Color::Dark {
                let (mx, my) = (i % w + QUIET, i / w + QUIET);
                for dy in 0..scale {
                    let row = (my * scale + dy) * side;
                    pixels[row + mx * scale..row + mx * scale + scale].fill(0);
                }
            }
        }
        let mut out = Vec::new();
        let side32 =
            u32::try_from(side).map_err(|_| FingerprintError::Render("image too large".into()))?;
        let mut enc = png::Encoder::new(&mut out, side32, side32);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc
            .write_header()
            .map_err(|e| FingerprintError::Render(e.to_string()))?;
        writer
            .write_image_data(&pixels)
            .map_err(|e| FingerprintError::Render(e.to_string()))?;
        writer
            .finish()
            .map_err(|e| FingerprintError::Render(e.to_string()))?;
        Ok(out)
    }
}
