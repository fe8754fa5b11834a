use super::*;

#[test]
fn widths_follow_nataraj_table_1() {
    let kb = 1024;
    for (len, w) in [
        (1, 32),
        (10 * kb - 1, 32),
        (10 * kb, 64),
        (30 * kb, 128),
        (60 * kb, 256),
        (100 * kb, 384),
        (200 * kb, 512),
        (500 * kb, 768),
        (1000 * kb, 1024),
        (50 << 20, 1024),
    ] {
        assert_eq!(nataraj_width(len), w, "{len}");
    }
}

#[test]
fn thumbnail_averages_blocks_by_hand() {
    // 4 x 4 plot: rows [0,0,255,255] x2, then [255,255,255,255], [0,0,0,0]; to 2 x 2:
    // top-left 0, top-right 255, bottom-left (255*2 + 0*2)/4, bottom-right the same.
    let bytes = [
        0, 0, 255, 255, 0, 0, 255, 255, 255, 255, 255, 255, 0, 0, 0, 0,
    ];
    let t = thumbnail(&BytePlot::with_width(&bytes, 4), 2);
    assert_eq!(t, [0.0, 1.0, 0.5, 0.5]);
    // Smaller than the thumbnail: enlarged (a 1 x 2 plot to 2 x 2).
    let t = thumbnail(&BytePlot::with_width(&[0, 255], 2), 2);
    assert_eq!(t, [0.0, 1.0, 0.0, 1.0]);
}

#[test]
fn glcm_matches_the_hand_computed_haralick_example() {
    // scikit-image's graycomatrix example image; offset (0, 1). Its co-occurrence counts
    // [[2,2,1,0],[0,2,0,0],[0,0,3,1],[0,0,0,1]] plus their transpose, over 24.
    let q = [0, 0, 1, 1, 0, 0, 1, 1, 0, 2, 2, 2, 2, 2, 3, 3];
    let [contrast, homogeneity, asm, correlation, entropy] = glcm_stats(&q, 4, 4, 0, 1);
    let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
    assert!(close(contrast, 14.0 / 24.0), "{contrast}");
    assert!(close(homogeneity, 19.4 / 24.0), "{homogeneity}");
    assert!(close(asm, 84.0 / 576.0), "{asm}");
    assert!(
        (correlation - 0.719_532_554_257_095).abs() < 1e-12,
        "{correlation}"
    );
    assert!((entropy - 3.022_055_208_874_2).abs() < 1e-12, "{entropy}");
}

#[test]
fn flat_file_has_flat_texture() {
    let v = texture(&[0x41; 5120]); // 160 full rows of 32
    let n = names();
    assert_eq!((v.len(), n.len()), (DIM, DIM));
    let get = |name: &str| v[n.iter().position(|x| x == name).unwrap()];
    assert_eq!(get("image_thumb_r3_c5"), 65.0 / 255.0);
    // Every neighbour equals the centre: code 255, uniform, all in one bin.
    let lbp: Vec<f32> = v[256..256 + 59].to_vec();
    assert_eq!(lbp.iter().filter(|&&x| x == 1.0).count(), 1);
    assert_eq!(get("image_lbp_nonuniform"), 0.0);
    assert_eq!(get("image_glcm_contrast_d0_1"), 0.0);
    assert_eq!(get("image_glcm_asm_d1_m1"), 1.0);
    assert_eq!(get("image_glcm_correlation_d1_1"), 1.0);
    assert_eq!(get("image_entropy"), 0.0);
    assert_eq!(get("image_std"), 0.0);
    assert_eq!(get("image_mean"), 65.0 / 255.0);
}

#[test]
fn uniform_patterns_are_58() {
    let map = uniform_index();
    assert_eq!(map.iter().filter(|&&i| i < 58).count(), 58);
    assert_eq!((map[0], map[255]), (0, 57));
    assert_eq!(map[0b0101_0101], 58);
}

#[test]
fn png_holds_the_bytes_and_the_region_strip() {
    let bytes: Vec<u8> = (0..100u32).map(|i| (i * 2) as u8).collect();
    let plot = BytePlot::with_width(&bytes, 10);
    let regions = [
        Region {
            name: "headers".into(),
            start: 0,
            end: 30,
        },
        Region {
            name: ".text".into(),
            start: 30,
            end: 100,
        },
    ];
    let mut png_bytes = Vec::new();
    assert_eq!(
        write_png(&plot, &regions, 1000, &mut png_bytes).unwrap(),
        10
    );
    let dec = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = dec.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (18, 10));
    let px = |x: usize, y: usize| &buf[(y * 18 + x) * 3..(y * 18 + x) * 3 + 3];
    assert_eq!(px(0, 0), [128, 128, 128]); // headers strip
    assert_eq!(px(0, 5), region_colour(&regions, 1)); // .text strip
    assert_eq!(px(MARGIN + 5, 1), [30, 30, 30]); // byte 15 = 30, untouched row
                                                 // Row 3 starts .text: tinted half-way to its colour.
    let c = region_colour(&regions, 1);
    let b = 2 * 32u16;
    assert_eq!(
        px(MARGIN + 2, 3),
        [0, 1, 2].map(|k| ((b + u16::from(c[k])) / 2) as u8)
    );
    // At most max_rows rows.
    let mut small = Vec::new();
    assert_eq!(write_png(&plot, &regions, 4, &mut small).unwrap(), 4);
    assert!(matches!(
        write_png(&BytePlot::new(&[]), &[], 4, Vec::new()),
        Err(ImageError::Empty)
    ));
}

#[test]
fn random_files_give_finite_descriptors() {
    let mut rng = mallard_rand::SplitMix64::new(14);
    for len in [1usize, 7, 63, 4096, 70_000] {
        let bytes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        let v = texture(&bytes);
        assert_eq!(v.len(), DIM);
        assert!(v.iter().all(|x| x.is_finite()), "{len}");
    }
}
