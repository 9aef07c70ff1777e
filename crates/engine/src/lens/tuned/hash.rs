//! The tuned-lens package's `unembed_hash`: a lens's `config.json` records
//! SHA-256 of `np.array_str(W, precision=1)` of the float32 unembedding `W`
//! (numpy's default print options), and the package warns on load when the
//! model's hash differs. Matching that warning means printing the matrix
//! byte for byte as numpy does, so this is a port of the parts of numpy's
//! `arrayprint.py` (`FloatingFormat`, `_formatArray`, `_leading_trailing`,
//! `_extendLine`) and of its Dragon4 float printer that a 2-D float32 array
//! reaches.
//!
//! The package does not pin numpy, and numpy's choice of notation moved:
//! this follows numpy >= 2.2, which prints float32 in scientific notation
//! once a printed magnitude reaches 1e6 (earlier versions: 1e8), and which
//! compares the smallest magnitude with 1e-4 in float32 (numpy 1.x: in
//! float64, so exactly float32(1e-4) differs). Unembedding weights are
//! nowhere near either edge, so their hashes agree across versions.

use std::cmp::Ordering;

use sha2::{Digest, Sha256};

/// numpy's `threshold`: larger arrays are summarised.
const THRESHOLD: usize = 1000;
/// numpy's `edgeitems`: rows/columns kept at each end of a summarised axis.
const EDGE_ITEMS: usize = 3;
/// numpy's `linewidth`.
const LINE_WIDTH: usize = 75;
/// The `precision` the package passes.
const PRECISION: i32 = 1;

/// The tuned-lens package's `unembed_hash` of a `[rows, cols]` row-major f32 matrix.
///
/// Panics if `data.len() != rows * cols`.
pub fn unembed_hash_of_matrix(data: &[f32], rows: usize, cols: usize) -> String {
    assert_eq!(
        data.len(),
        rows * cols,
        "unembed_hash: data is not [{rows}, {cols}]"
    );
    let rows_of = |idx: &[usize]| {
        Ok::<_, std::convert::Infallible>(
            idx.iter()
                .flat_map(|&r| &data[r * cols..(r + 1) * cols])
                .copied()
                .collect(),
        )
    };
    match unembed_hash_of_rows(rows, cols, rows_of) {
        Ok(h) => h,
        Err(never) => match never {},
    }
}

/// [`unembed_hash_of_matrix`] of a `[rows, cols]` matrix too big to hold in f32 (a
/// quantized or 16-bit unembedding): `fetch` is given the rows numpy prints
/// (six of a large matrix) and returns them in f32, row-major.
pub fn unembed_hash_of_rows<E>(
    rows: usize,
    cols: usize,
    fetch: impl FnOnce(&[usize]) -> Result<Vec<f32>, E>,
) -> Result<String, E> {
    let idx = printed_indices(rows, rows.saturating_mul(cols) > THRESHOLD);
    let data = fetch(&idx)?;
    assert_eq!(data.len(), idx.len() * cols, "unembed_hash: rows fetched");
    let at = |r: usize| idx.binary_search(&r).expect("a printed row");
    let text = array_str(rows, cols, |r, c| data[at(r) * cols + c]);
    Ok(Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// `np.array_str(W, precision=1)` of a `[rows, cols]` float32 matrix whose
/// element `(r, c)` is `get(r, c)`. Takes an accessor rather than a slice
/// because a summarised matrix reads only its printed corners.
fn array_str(rows: usize, cols: usize, get: impl Fn(usize, usize) -> f32) -> String {
    if rows == 0 || cols == 0 {
        return "[]".to_string();
    }
    let summarise = rows.saturating_mul(cols) > THRESHOLD;
    let row_idx = printed_indices(rows, summarise);
    let col_idx = printed_indices(cols, summarise);
    // Only the printed elements choose widths and notation.
    let shown: Vec<f32> = row_idx
        .iter()
        .flat_map(|&r| col_idx.iter().map(move |&c| (r, c)))
        .map(|(r, c)| get(r, c))
        .collect();
    let fmt = FloatFormat::new(&shown);
    let cell = |r: usize, c: usize| fmt.format(get(r, c));

    // `_formatArray` for two axes with separator ' ': the outer level has
    // hanging indent " " and width 75, each row "  " and width 74; a row's
    // elements wrap when the line would pass 74 - len("]").
    let row_indent = "  ";
    let elem_width = LINE_WIDTH - 1 - 1;
    let format_row = |r: usize| -> String {
        let mut s = String::new();
        let mut line = row_indent.to_string();
        let n = col_idx.len();
        for (k, &c) in col_idx.iter().enumerate() {
            extend_line(&mut s, &mut line, &cell(r, c), elem_width, row_indent);
            if k + 1 < n {
                line.push(' ');
                if summarise && cols > 2 * EDGE_ITEMS && k + 1 == EDGE_ITEMS {
                    extend_line(&mut s, &mut line, "...", elem_width, row_indent);
                    line.push(' ');
                }
            }
        }
        s.push_str(&line);
        format!("[{}]", &s[row_indent.len()..])
    };

    let mut s = String::new();
    let n = row_idx.len();
    for (k, &r) in row_idx.iter().enumerate() {
        s.push(' ');
        s.push_str(&format_row(r));
        if k + 1 < n {
            s.push('\n');
            if summarise && rows > 2 * EDGE_ITEMS && k + 1 == EDGE_ITEMS {
                s.push_str(" ...\n");
            }
        }
    }
    format!("[{}]", &s[1..])
}

/// The indices `_leading_trailing` keeps along one axis.
fn printed_indices(len: usize, summarise: bool) -> Vec<usize> {
    if summarise && len > 2 * EDGE_ITEMS {
        (0..EDGE_ITEMS).chain(len - EDGE_ITEMS..len).collect()
    } else {
        (0..len).collect()
    }
}

/// `_extendLine`: start a new line when `word` would pass `width`, unless
/// the line holds nothing but the indent (wrapping would not help).
fn extend_line(s: &mut String, line: &mut String, word: &str, width: usize, indent: &str) {
    if line.len() + word.len() > width && line.len() > indent.len() {
        s.push_str(line.trim_end());
        s.push('\n');
        *line = indent.to_string();
    }
    line.push_str(word);
}

/// numpy's `FloatingFormat` with `floatmode='maxprec'`, `sign='-'`,
/// `suppress=False`, `precision=1`: one notation and one set of paddings for
/// the whole array, chosen from its (printed) values.
struct FloatFormat {
    exp_format: bool,
    precision: i32,
    min_digits: i32,
    keep_zeros: bool,
    pad_left: i64,
    pad_right: i64,
    exp_size: i32,
}

impl FloatFormat {
    fn new(data: &[f32]) -> Self {
        let finite: Vec<f32> = data.iter().copied().filter(|x| x.is_finite()).collect();
        // numpy 2 compares a float32 scalar with Python floats in float32.
        let mut exp_format = false;
        let abs_non_zero: Vec<f32> = finite
            .iter()
            .filter(|&&x| x != 0.0)
            .map(|x| x.abs())
            .collect();
        if !abs_non_zero.is_empty() {
            let max = abs_non_zero
                .iter()
                .copied()
                .fold(f32::NEG_INFINITY, f32::max);
            let min = abs_non_zero.iter().copied().fold(f32::INFINITY, f32::min);
            // 10.**min(8, finfo(float32).precision) == 1e6.
            exp_format =
                max >= 1e6f64 as f32 || min < 0.0001f64 as f32 || max / min > 1000f64 as f32;
        }
        let mut f = FloatFormat {
            exp_format,
            precision: PRECISION,
            min_digits: -1,
            keep_zeros: false,
            pad_left: 0,
            pad_right: 0,
            exp_size: -1,
        };
        if finite.is_empty() {
            // pad_left = pad_right = 0, nothing else is used.
        } else if exp_format {
            let strs: Vec<String> = finite
                .iter()
                .map(|&x| dragon4_scientific(x, PRECISION, -1, false, -1, -1))
                .collect();
            let mut exp_len = 0;
            let mut frac_len = 0;
            let mut int_len = 0;
            for s in &strs {
                let (mant, exp) = s.split_once('e').unwrap_or((s, ""));
                let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
                exp_len = exp_len.max(exp.len());
                frac_len = frac_len.max(frac.len());
                int_len = int_len.max(int.len());
            }
            f.exp_size = exp_len as i32 - 1;
            f.keep_zeros = true;
            f.precision = frac_len as i32;
            f.min_digits = f.precision;
            f.pad_left = int_len as i64;
            f.pad_right = f.exp_size as i64 + 2 + f.precision as i64;
        } else {
            let mut frac_len = 0;
            let mut int_len = 0;
            for &x in &finite {
                let s = dragon4_positional(x, PRECISION, -1, false, -1, -1);
                let (int, frac) = s.split_once('.').unwrap_or((&s, ""));
                frac_len = frac_len.max(frac.len());
                int_len = int_len.max(int.len());
            }
            f.pad_left = int_len as i64;
            f.pad_right = frac_len as i64;
            f.min_digits = 0;
        }
        if finite.len() != data.len() {
            let neginf = data.contains(&f32::NEG_INFINITY) as i64;
            let offset = f.pad_right + 1;
            f.pad_left = f.pad_left.max(3 - offset).max(3 + neginf - offset);
        }
        f
    }

    fn format(&self, x: f32) -> String {
        if !x.is_finite() {
            let ret = if x.is_nan() {
                "nan"
            } else if x < 0.0 {
                "-inf"
            } else {
                "inf"
            };
            let pad = (self.pad_left + self.pad_right + 1 - ret.len() as i64).max(0) as usize;
            return format!("{}{ret}", " ".repeat(pad));
        }
        if self.exp_format {
            dragon4_scientific(
                x,
                self.precision,
                self.min_digits,
                self.keep_zeros,
                self.pad_left as i32,
                self.exp_size,
            )
        } else {
            dragon4_positional(
                x,
                self.precision,
                self.min_digits,
                self.keep_zeros,
                self.pad_left as i32,
                self.pad_right as i32,
            )
        }
    }
}

/// numpy's `dragon4_positional(x, precision, min_digits, unique=True,
/// fractional=True, trim='k' if keep_zeros else '.', sign=False, pad_left,
/// pad_right)` for a finite float32 (`-1` stands for None).
fn dragon4_positional(
    x: f32,
    precision: i32,
    min_digits: i32,
    keep_zeros: bool,
    pad_left: i32,
    pad_right: i32,
) -> String {
    let mut buf = String::new();
    let has_sign = x.is_sign_negative() as i32;
    if has_sign == 1 {
        buf.push('-');
    }
    let (digits, print_exp) = dragon4_f32(x, Cutoff::Fraction, precision, min_digits);
    let num_digits = digits.len() as i32;
    let num_whole;
    let mut num_frac;
    if print_exp >= 0 {
        num_whole = print_exp + 1;
        if num_digits <= num_whole {
            buf.push_str(&digits);
            buf.push_str(&"0".repeat((num_whole - num_digits) as usize));
            num_frac = 0;
        } else {
            buf.push_str(&digits[..num_whole as usize]);
            buf.push('.');
            buf.push_str(&digits[num_whole as usize..]);
            num_frac = num_digits - num_whole;
        }
    } else {
        let zeros = -(print_exp + 1);
        buf.push_str("0.");
        buf.push_str(&"0".repeat(zeros as usize));
        buf.push_str(&digits);
        num_frac = num_digits + zeros;
        num_whole = 1;
    }
    if num_frac == 0 {
        buf.push('.');
    }
    let desired_frac = min_digits.max(0);
    if keep_zeros {
        if desired_frac > num_frac {
            buf.push_str(&"0".repeat((desired_frac - num_frac) as usize));
            num_frac = desired_frac;
        }
    } else if num_frac > 0 {
        while buf.ends_with('0') {
            buf.pop();
            num_frac -= 1;
        }
    }
    if pad_right >= num_frac {
        buf.push_str(&" ".repeat((pad_right - num_frac) as usize));
    }
    if pad_left > num_whole + has_sign {
        let shift = (pad_left - (num_whole + has_sign)) as usize;
        buf = format!("{}{buf}", " ".repeat(shift));
    }
    buf
}

/// numpy's `dragon4_scientific(x, precision, min_digits, unique=True,
/// trim='k' if keep_zeros else '.', sign=False, pad_left, exp_digits)` for a
/// finite float32 (`-1` stands for None).
fn dragon4_scientific(
    x: f32,
    precision: i32,
    min_digits: i32,
    keep_zeros: bool,
    pad_left: i32,
    exp_digits: i32,
) -> String {
    let mut buf = String::new();
    let negative = x.is_sign_negative();
    let left_chars = 1 + negative as i32;
    if pad_left > left_chars {
        buf.push_str(&" ".repeat((pad_left - left_chars) as usize));
    }
    if negative {
        buf.push('-');
    }
    let cutoff_max = if precision < 0 { -1 } else { precision + 1 };
    let cutoff_min = if min_digits < 0 { -1 } else { min_digits + 1 };
    let (digits, print_exp) = dragon4_f32(x, Cutoff::Total, cutoff_max, cutoff_min);
    buf.push_str(&digits[..1]);
    let num_frac = digits.len() as i32 - 1;
    buf.push('.');
    buf.push_str(&digits[1..]);
    let add_digits = min_digits.max(0);
    if keep_zeros {
        if add_digits > num_frac {
            buf.push_str(&"0".repeat((add_digits - num_frac) as usize));
        }
    } else if num_frac > 0 {
        while buf.ends_with('0') {
            buf.pop();
        }
    }
    let exp_digits = if exp_digits > 5 {
        5
    } else if exp_digits < 0 {
        2
    } else {
        exp_digits
    } as usize;
    buf.push('e');
    buf.push(if print_exp >= 0 { '+' } else { '-' });
    buf.push_str(&format!(
        "{:0width$}",
        print_exp.unsigned_abs(),
        width = exp_digits
    ));
    buf
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Cutoff {
    /// Cut-offs count digits after the decimal point.
    Fraction,
    /// Cut-offs count significant digits.
    Total,
}

impl Cutoff {
    /// The decimal exponent of the last digit kept when `digits` digits are
    /// counted this way from a first digit just below `digit_exponent`.
    fn last_exponent(self, digit_exponent: i32, digits: i32) -> i32 {
        match self {
            Cutoff::Total => digit_exponent - digits,
            Cutoff::Fraction => -digits,
        }
    }
}

/// numpy's Dragon4 in unique mode for the magnitude of a finite float32:
/// the shortest digits that read back as `x`, but cut at `cutoff_max`
/// digits (rounding the exact binary value, ties to even) and continued to
/// at least `cutoff_min` digits (`-1`: no limit). Returns the digits and the
/// decimal exponent of the first one.
fn dragon4_f32(x: f32, cutoff_mode: Cutoff, cutoff_max: i32, cutoff_min: i32) -> (String, i32) {
    let parts = Float32Parts::of(x);
    if parts.mantissa == 0 {
        return ("0".to_string(), 0);
    }
    let mut scaled = Scaled::new(&parts);
    let digit_exponent = scaled.scale_to_first_digit(&parts, cutoff_mode, cutoff_max);
    let stops = DigitStops::new(digit_exponent, cutoff_mode, cutoff_max, cutoff_min);
    let (mut digits, last) = scaled.generate_digits(digit_exponent, stops);
    let mut out_exponent = digit_exponent - 1;
    if scaled.rounds_down(last) {
        digits.push(b'0' + last.digit as u8);
    } else {
        out_exponent += push_rounded_up(&mut digits, last.digit);
    }
    (
        String::from_utf8(digits).expect("ASCII digits"),
        out_exponent,
    )
}

/// A float32's magnitude as `mantissa * 2^exponent`, with what Dragon4 needs
/// to know about its neighbours.
struct Float32Parts {
    mantissa: u32,
    exponent: i32,
    /// The index of the mantissa's highest set bit.
    mantissa_bit: i32,
    /// At a power of two (above the smallest normal) the float below is half
    /// as far away as the float above.
    unequal_margins: bool,
}

impl Float32Parts {
    fn of(x: f32) -> Self {
        let bits = x.to_bits();
        let float_mantissa = bits & 0x7f_ffff;
        let float_exponent = (bits >> 23) & 0xff;
        if float_exponent != 0 {
            Float32Parts {
                mantissa: (1u32 << 23) | float_mantissa,
                exponent: float_exponent as i32 - 127 - 23,
                mantissa_bit: 23,
                unequal_margins: float_exponent != 1 && float_mantissa == 0,
            }
        } else {
            // Subnormal: no implicit bit, so the mantissa's own top bit counts.
            Float32Parts {
                mantissa: float_mantissa,
                exponent: 1 - 127 - 23,
                mantissa_bit: 31 - float_mantissa.leading_zeros() as i32,
                unequal_margins: false,
            }
        }
    }

    /// Estimate of floor(log10(v)) + 1, exact or one too low.
    fn digit_exponent_estimate(&self) -> i32 {
        (((self.mantissa_bit + self.exponent) as f64) * std::f64::consts::LOG10_2 - 0.69).ceil()
            as i32
    }
}

/// The float and its rounding interval as exact big-integer ratios: the
/// magnitude is `value / scale`, and `margin_low / scale` is half the
/// distance to the float below (the margin above is the same, or twice it at
/// unequal margins). Anything in the interval reads back as the float.
struct Scaled {
    value: Big,
    scale: Big,
    margin_low: Big,
    unequal_margins: bool,
    /// An even mantissa wins ties when read back, so the interval's ends
    /// belong to it.
    ends_inclusive: bool,
}

/// The digit the generation loop stopped at, before rounding, and whether
/// the digits rounded down (`low`) or up (`high`) at it would read back as
/// the float.
#[derive(Clone, Copy)]
struct LastDigit {
    digit: u32,
    low: bool,
    high: bool,
}

impl Scaled {
    /// numpy's four cases in one: the value is doubled (quadrupled at unequal
    /// margins) so that both half-distances are whole numbers.
    fn new(parts: &Float32Parts) -> Self {
        let extra = if parts.unequal_margins { 2 } else { 1 };
        let mut value = Big::from_u32(parts.mantissa);
        let (scale, margin_low) = if parts.exponent > 0 {
            value.shl(parts.exponent as u32 + extra);
            (Big::pow2(extra), Big::pow2(parts.exponent as u32))
        } else {
            value.shl(extra);
            (
                Big::pow2((-parts.exponent) as u32 + extra),
                Big::from_u32(1),
            )
        };
        Scaled {
            value,
            scale,
            margin_low,
            unequal_margins: parts.unequal_margins,
            ends_inclusive: parts.mantissa.is_multiple_of(2),
        }
    }

    fn margin_high(&self) -> Big {
        let mut h = self.margin_low.clone();
        if self.unequal_margins {
            h.shl(1);
        }
        h
    }

    /// Move to the next decimal digit.
    fn times_ten(&mut self) {
        self.value.mul_small(10);
        self.margin_low.mul_small(10);
    }

    /// Divides out the power of ten so that `value / scale` is below 10 and
    /// its integer part is the first digit to print; returns the decimal
    /// exponent just above that digit.
    fn scale_to_first_digit(
        &mut self,
        parts: &Float32Parts,
        cutoff_mode: Cutoff,
        cutoff_max: i32,
    ) -> i32 {
        let mut digit_exponent = parts.digit_exponent_estimate();
        // Fractional cut-off: start no lower than the first digit that can be printed.
        if cutoff_max >= 0 && cutoff_mode == Cutoff::Fraction && digit_exponent <= -cutoff_max {
            digit_exponent = -cutoff_max + 1;
        }
        if digit_exponent > 0 {
            self.scale.mul_pow10(digit_exponent as u32);
        } else if digit_exponent < 0 {
            self.value.mul_pow10((-digit_exponent) as u32);
            self.margin_low.mul_pow10((-digit_exponent) as u32);
        }
        // Correct the estimate when it was one too low.
        if self.value.cmp(&self.scale) != Ordering::Less {
            digit_exponent += 1;
        } else {
            self.times_ten();
        }
        digit_exponent
    }

    /// Digits from the first until one, at or below `stops.min_exp`, lands in
    /// the float's interval, or until `stops.max_exp`. That last digit comes
    /// back on its own, not yet rounded, with the remainder below it left in
    /// `value` for the rounding to read.
    fn generate_digits(
        &mut self,
        mut digit_exponent: i32,
        stops: DigitStops,
    ) -> (Vec<u8>, LastDigit) {
        let mut digits: Vec<u8> = Vec::new();
        loop {
            digit_exponent -= 1;
            let digit = self.value.div_small_quotient(&self.scale);
            let (low, high) = self.interval_reached();
            if ((low || high) && digit_exponent <= stops.min_exp) || digit_exponent == stops.max_exp
            {
                return (digits, LastDigit { digit, low, high });
            }
            digits.push(b'0' + digit as u8);
            self.times_ten();
        }
    }

    /// Whether the digits so far, ending in the current digit as it stands
    /// (low) or raised by one (high), lie within the float's interval.
    fn interval_reached(&self) -> (bool, bool) {
        let value_high = self.value.add(&self.margin_high());
        let c = self.value.cmp(&self.margin_low);
        let low = if self.ends_inclusive {
            c != Ordering::Greater
        } else {
            c == Ordering::Less
        };
        let c = value_high.cmp(&self.scale);
        let high = if self.ends_inclusive {
            c != Ordering::Less
        } else {
            c == Ordering::Greater
        };
        (low, high)
    }

    /// Round the last digit: down when only that keeps us inside the interval,
    /// otherwise to the nearer of the two, ties to even.
    fn rounds_down(self, last: LastDigit) -> bool {
        if last.low != last.high {
            return last.low;
        }
        let mut twice_remainder = self.value;
        twice_remainder.shl(1);
        match twice_remainder.cmp(&self.scale) {
            Ordering::Less => true,
            Ordering::Greater => false,
            Ordering::Equal => last.digit.is_multiple_of(2),
        }
    }
}

/// The decimal exponents where digit generation stops: at `max_exp` in any
/// case, at `min_exp` or below as soon as the digits read back as the float.
#[derive(Clone, Copy)]
struct DigitStops {
    max_exp: i32,
    min_exp: i32,
}

impl DigitStops {
    fn new(digit_exponent: i32, cutoff_mode: Cutoff, cutoff_max: i32, cutoff_min: i32) -> Self {
        // numpy's output buffer never binds for a float32.
        let mut max_exp = digit_exponent - 16384;
        if cutoff_max >= 0 {
            max_exp = max_exp.max(cutoff_mode.last_exponent(digit_exponent, cutoff_max));
        }
        let mut min_exp = digit_exponent;
        if cutoff_min >= 0 {
            min_exp = min_exp.min(cutoff_mode.last_exponent(digit_exponent, cutoff_min));
        }
        DigitStops { max_exp, min_exp }
    }
}

/// Appends `digit + 1`, carrying through the nines before it (which, as
/// trailing zeros, are dropped). Returns 1 when the carry runs off the front
/// and the digits become "1" a decade up, else 0.
fn push_rounded_up(digits: &mut Vec<u8>, digit: u32) -> i32 {
    if digit != 9 {
        digits.push(b'0' + digit as u8 + 1);
        return 0;
    }
    loop {
        match digits.pop() {
            None => {
                digits.push(b'1');
                return 1;
            }
            Some(b'9') => {}
            Some(d) => {
                digits.push(d + 1);
                return 0;
            }
        }
    }
}

/// Just enough unsigned big-integer arithmetic for Dragon4 on a float32
/// (values up to about 2^400): little-endian 32-bit limbs, no leading zeros.
#[derive(Clone, Debug)]
struct Big(Vec<u32>);

impl Big {
    fn from_u32(v: u32) -> Self {
        let mut b = Big(vec![v]);
        b.trim();
        b
    }

    fn pow2(n: u32) -> Self {
        let mut b = Big::from_u32(1);
        b.shl(n);
        b
    }

    fn trim(&mut self) {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
    }

    fn shl(&mut self, n: u32) {
        if self.0.is_empty() {
            return;
        }
        let (limbs, bits) = ((n / 32) as usize, n % 32);
        if bits > 0 {
            let mut carry = 0u32;
            for limb in self.0.iter_mut() {
                let v = *limb;
                *limb = (v << bits) | carry;
                carry = v >> (32 - bits);
            }
            if carry != 0 {
                self.0.push(carry);
            }
        }
        if limbs > 0 {
            self.0.splice(0..0, std::iter::repeat_n(0, limbs));
        }
    }

    fn mul_small(&mut self, m: u32) {
        let mut carry = 0u64;
        for limb in self.0.iter_mut() {
            let p = *limb as u64 * m as u64 + carry;
            *limb = p as u32;
            carry = p >> 32;
        }
        if carry != 0 {
            self.0.push(carry as u32);
        }
        self.trim();
    }

    fn mul_pow10(&mut self, n: u32) {
        for _ in 0..n {
            self.mul_small(10);
        }
    }

    fn add(&self, other: &Big) -> Big {
        let n = self.0.len().max(other.0.len());
        let mut out = Vec::with_capacity(n + 1);
        let mut carry = 0u64;
        for i in 0..n {
            let s =
                *self.0.get(i).unwrap_or(&0) as u64 + *other.0.get(i).unwrap_or(&0) as u64 + carry;
            out.push(s as u32);
            carry = s >> 32;
        }
        if carry != 0 {
            out.push(carry as u32);
        }
        let mut b = Big(out);
        b.trim();
        b
    }

    fn cmp(&self, other: &Big) -> Ordering {
        self.0
            .len()
            .cmp(&other.0.len())
            .then_with(|| self.0.iter().rev().cmp(other.0.iter().rev()))
    }

    /// `self -= other`, for `self >= other`.
    fn sub_assign(&mut self, other: &Big) {
        let mut borrow = 0i64;
        for i in 0..self.0.len() {
            let d = self.0[i] as i64 - *other.0.get(i).unwrap_or(&0) as i64 - borrow;
            self.0[i] = d.rem_euclid(1 << 32) as u32;
            borrow = (d < 0) as i64;
        }
        debug_assert_eq!(borrow, 0);
        self.trim();
    }

    /// `floor(self / divisor)` (below 10 in Dragon4), leaving the remainder in `self`.
    fn div_small_quotient(&mut self, divisor: &Big) -> u32 {
        let mut q = 0;
        while self.cmp(divisor) != Ordering::Less {
            self.sub_assign(divisor);
            q += 1;
        }
        debug_assert!(q < 10);
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CASES: &str = include_str!("../../../../../tests/fixtures/unembed_hash_cases.json");

    fn fixtures() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
    }

    fn decode_bits(hex: &str) -> Vec<f32> {
        (0..hex.len() / 8)
            .map(|i| f32::from_bits(u32::from_str_radix(&hex[8 * i..8 * i + 8], 16).unwrap()))
            .collect()
    }

    /// The first place two texts differ, with some context, for failures.
    fn first_difference(got: &str, want: &str) -> String {
        let at = got
            .bytes()
            .zip(want.bytes())
            .position(|(a, b)| a != b)
            .unwrap_or(got.len().min(want.len()));
        let from = at.saturating_sub(60);
        format!(
            "first difference at byte {at}:\n got: {:?}\nwant: {:?}",
            &got[from..(at + 20).min(got.len())],
            &want[from..(at + 20).min(want.len())]
        )
    }

    #[test]
    fn matches_numpy_on_the_recorded_cases() {
        let doc: serde_json::Value = serde_json::from_str(CASES).unwrap();
        let cases = doc["cases"].as_array().unwrap();
        assert!(cases.len() >= 300, "only {} cases", cases.len());
        // Values that would change the text if an unprinted element were read.
        let poisons = [f32::NAN, 1e30, -1e-30, f32::NEG_INFINITY, -12345.6, 0.0];
        let mut failures = Vec::new();
        for (i, case) in cases.iter().enumerate() {
            let name = case["name"].as_str().unwrap();
            let rows = case["rows"].as_u64().unwrap() as usize;
            let cols = case["cols"].as_u64().unwrap() as usize;
            let block = decode_bits(case["bits"].as_str().unwrap());
            let data = match case["layout"].as_str().unwrap() {
                "full" => block,
                "corners" => {
                    let r_idx = printed_indices(rows, true);
                    let c_idx = printed_indices(cols, true);
                    assert_eq!(block.len(), r_idx.len() * c_idx.len(), "{name}");
                    let mut full = vec![poisons[i % poisons.len()]; rows * cols];
                    for (bi, &r) in r_idx.iter().enumerate() {
                        for (bj, &c) in c_idx.iter().enumerate() {
                            full[r * cols + c] = block[bi * c_idx.len() + bj];
                        }
                    }
                    full
                }
                other => panic!("{name}: layout {other}"),
            };
            assert_eq!(data.len(), rows * cols, "{name}");
            let text = array_str(rows, cols, |r, c| data[r * cols + c]);
            let want_text = case["text"].as_str().unwrap();
            let want_hash = case["hash"].as_str().unwrap();
            if text != want_text {
                failures.push(format!("{name}: {}", first_difference(&text, want_text)));
            } else if unembed_hash_of_matrix(&data, rows, cols) != want_hash {
                failures.push(format!("{name}: same text, different hash"));
            }
        }
        assert!(
            failures.is_empty(),
            "{} of {} cases differ:\n{}",
            failures.len(),
            cases.len(),
            failures.join("\n")
        );
    }

    /// The hashes the package itself wrote for the tiny fixture models.
    #[test]
    fn matches_the_package_on_the_tiny_models() {
        for model in ["llama", "qwen3"] {
            let config = std::fs::read_to_string(
                fixtures().join(format!("research/tuned/{model}/config.json")),
            )
            .unwrap();
            let config: serde_json::Value = serde_json::from_str(&config).unwrap();
            let want = config["unembed_hash"].as_str().unwrap();
            let bytes =
                std::fs::read(fixtures().join(format!("tiny/{model}/model.safetensors"))).unwrap();
            let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
            let w = st
                .tensor("lm_head.weight")
                .or_else(|_| st.tensor("model.embed_tokens.weight"))
                .unwrap();
            let (rows, cols) = (w.shape()[0], w.shape()[1]);
            // The package hashes `.float()`, so any stored dtype becomes float32 first.
            let data: Vec<f32> = match w.dtype() {
                safetensors::Dtype::F32 => w
                    .data()
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                    .collect(),
                safetensors::Dtype::F64 => w
                    .data()
                    .chunks_exact(8)
                    .map(|b| f64::from_le_bytes(b.try_into().unwrap()) as f32)
                    .collect(),
                safetensors::Dtype::BF16 => w
                    .data()
                    .chunks_exact(2)
                    .map(|b| f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16))
                    .collect(),
                other => panic!("{model}: unembedding stored as {other:?}"),
            };
            assert_eq!(unembed_hash_of_matrix(&data, rows, cols), want, "{model}");
        }
    }

    #[test]
    fn prints_like_numpy_by_hand() {
        let s = |v: &[f32], rows, cols| array_str(rows, cols, |r, c| v[r * cols + c]);
        assert_eq!(
            s(&[0.25, 0.35, -0.04, -0.0], 1, 4),
            "[[ 0.2  0.3 -0.  -0. ]]"
        );
        assert_eq!(s(&[1e-5, 2e-5], 1, 2), "[[1.e-05 2.e-05]]");
        assert_eq!(
            s(&[1.0, f32::NAN, f32::NEG_INFINITY], 1, 3),
            "[[  1.  nan -inf]]"
        );
        assert_eq!(
            s(&[f32::from_bits(1), 1.25e10], 1, 2),
            "[[1.4e-45 1.2e+10]]"
        );
        assert_eq!(s(&[], 0, 3), "[]");
    }
}
