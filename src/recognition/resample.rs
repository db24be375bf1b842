//! Resampling of frames and plate regions for the models: Pillow-style antialiased bilinear
//! (a triangle filter whose support grows with the scale factor), which is what the training
//! code used, computed with SIMD by `fast_image_resize`. A region is resampled as if cut out of
//! the frame first: no pixel outside it contributes.

use anyhow::{Result, anyhow};
use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::RgbImage;

/// A rectangle of a frame: x, y, width, height in pixels (inside the frame, not empty).
pub type Region = [u32; 4];

/// Reusable resampler (keeps its scratch buffers between frames).
#[derive(Default)]
pub struct Resampler {
    resizer: Resizer,
}

impl Resampler {
    /// `region` of `frame` resampled to `width` x `height`, RGB, row-major, 3 bytes a pixel.
    pub fn rgb(
        &mut self,
        frame: &RgbImage,
        region: Region,
        width: u32,
        height: u32,
    ) -> Result<Vec<u8>> {
        let [x, y, w, h] = region;
        if w == 0
            || h == 0
            || x.saturating_add(w) > frame.width()
            || y.saturating_add(h) > frame.height()
        {
            return Err(anyhow!(
                "region {region:?} is not inside the {}x{} frame",
                frame.width(),
                frame.height()
            ));
        }
        // The filter must not reach past the region's edges (the models were trained on cut-out
        // crops), so a region smaller than the frame is copied out first (a plate: a few KB).
        let cut;
        let pixels: &[u8] = if [x, y, w, h] == [0, 0, frame.width(), frame.height()] {
            frame.as_raw()
        } else {
            let stride = 3 * frame.width() as usize;
            let row = 3 * w as usize;
            cut = (y as usize..(y + h) as usize)
                .flat_map(|r| {
                    let start = r * stride + 3 * x as usize;
                    frame.as_raw()[start..start + row].iter().copied()
                })
                .collect::<Vec<u8>>();
            &cut
        };
        let src = ImageRef::new(w, h, pixels, PixelType::U8x3)
            .map_err(|e| anyhow!("region buffer: {e}"))?;
        let mut dst = Image::new(width, height, PixelType::U8x3);
        let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
        self.resizer
            .resize(&src, &mut dst, &options)
            .map_err(|e| anyhow!("resampling {region:?} to {width}x{height}: {e}"))?;
        Ok(dst.into_vec())
    }
}

/// ITU-R 601 luma of an RGB pixel, 0-255 (as the reader was trained: 0.299 R + 0.587 G + 0.114 B).
pub fn luma(rgb: &[u8]) -> f32 {
    0.299 * rgb[0] as f32 + 0.587 * rgb[1] as f32 + 0.114 * rgb[2] as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uniform_region_stays_uniform_and_a_region_outside_the_frame_is_refused() {
        let mut frame = RgbImage::from_pixel(200, 100, image::Rgb([10, 20, 30]));
        for x in 100..200 {
            for y in 0..100 {
                frame.put_pixel(x, y, image::Rgb([200, 100, 50]));
            }
        }
        let mut resampler = Resampler::default();
        let left = resampler.rgb(&frame, [0, 0, 100, 100], 16, 8).unwrap();
        assert!(left.chunks(3).all(|p| p == [10, 20, 30]));
        let right = resampler.rgb(&frame, [120, 10, 60, 60], 8, 8).unwrap();
        assert!(right.chunks(3).all(|p| p == [200, 100, 50]));
        assert!(resampler.rgb(&frame, [150, 0, 60, 10], 8, 8).is_err());
        assert!(resampler.rgb(&frame, [0, 0, 0, 10], 8, 8).is_err());
    }

    #[test]
    fn luma_weights_sum_to_one() {
        assert!((luma(&[255, 255, 255]) - 255.0).abs() < 1e-3);
        assert!((luma(&[0, 255, 0]) - 149.685).abs() < 1e-3);
    }
}
