//! Operator overloading: `&a + &b`, `&a * 2.0`, `2.0 - &a`, `-&a`, and chains such as
//! `(&a + &b) * &c`. Every operator returns `Result<Tensor>`; a `Result` operand on either
//! side of a tensor carries an earlier error through the chain, so one `?` at the end
//! reports the first failure. Literals are `f64` or `i64` (one impl each, so `&x * 2.0`
//! and `&x + 1` infer without annotations) and take the tensor's dtype. Rust's orphan rules forbid `Result ⊕ Result` and
//! `Result ⊕ literal`, so those need a `?` in between: `((&a + &b)? * 2.0)?`.

use crate::Tensor;
use crate::error::Result;
use crate::op::BinaryOp;
use std::ops::{Add, Div, Mul, Neg, Sub};

macro_rules! binop {
    ($trait:ident, $method:ident, $op:ident) => {
        impl $trait<&Tensor> for &Tensor {
            type Output = Result<Tensor>;
            #[track_caller]
            fn $method(self, rhs: &Tensor) -> Result<Tensor> {
                self.binary(BinaryOp::$op, rhs)
            }
        }
        impl $trait<Tensor> for Tensor {
            type Output = Result<Tensor>;
            #[track_caller]
            fn $method(self, rhs: Tensor) -> Result<Tensor> {
                self.binary(BinaryOp::$op, &rhs)
            }
        }
        impl $trait<&Tensor> for Tensor {
            type Output = Result<Tensor>;
            #[track_caller]
            fn $method(self, rhs: &Tensor) -> Result<Tensor> {
                self.binary(BinaryOp::$op, rhs)
            }
        }
        impl $trait<Tensor> for &Tensor {
            type Output = Result<Tensor>;
            #[track_caller]
            fn $method(self, rhs: Tensor) -> Result<Tensor> {
                self.binary(BinaryOp::$op, &rhs)
            }
        }
        impl $trait<&Tensor> for Result<Tensor> {
            type Output = Result<Tensor>;
            #[track_caller]
            fn $method(self, rhs: &Tensor) -> Result<Tensor> {
                self?.binary(BinaryOp::$op, rhs)
            }
        }
        impl $trait<Tensor> for Result<Tensor> {
            type Output = Result<Tensor>;
            #[track_caller]
            fn $method(self, rhs: Tensor) -> Result<Tensor> {
                self?.binary(BinaryOp::$op, &rhs)
            }
        }
        impl $trait<Result<Tensor>> for &Tensor {
            type Output = Result<Tensor>;
            #[track_caller]
            fn $method(self, rhs: Result<Tensor>) -> Result<Tensor> {
                self.binary(BinaryOp::$op, &rhs?)
            }
        }
        impl $trait<Result<Tensor>> for Tensor {
            type Output = Result<Tensor>;
            #[track_caller]
            fn $method(self, rhs: Result<Tensor>) -> Result<Tensor> {
                self.binary(BinaryOp::$op, &rhs?)
            }
        }
                binop!(@scalars $trait, $method, $op, f64, i64);
    };
    (@scalars $trait:ident, $method:ident, $op:ident, $($s:ty),*) => {$(
        impl $trait<$s> for &Tensor {
            type Output = Result<Tensor>;
            #[track_caller]
            fn $method(self, rhs: $s) -> Result<Tensor> {
                self.binary(BinaryOp::$op, rhs)
            }
        }
        impl $trait<$s> for Tensor {
            type Output = Result<Tensor>;
            #[track_caller]
            fn $method(self, rhs: $s) -> Result<Tensor> {
                self.binary(BinaryOp::$op, rhs)
            }
        }
                impl $trait<&Tensor> for $s {
            type Output = Result<Tensor>;
            #[track_caller]
            fn $method(self, rhs: &Tensor) -> Result<Tensor> {
                rhs.binary_rev(BinaryOp::$op, self)
            }
        }
        impl $trait<Tensor> for $s {
            type Output = Result<Tensor>;
            #[track_caller]
            fn $method(self, rhs: Tensor) -> Result<Tensor> {
                rhs.binary_rev(BinaryOp::$op, self)
            }
        }
            )*};
}

binop!(Add, add, Add);
binop!(Sub, sub, Sub);
binop!(Mul, mul, Mul);
binop!(Div, div, Div);

impl Neg for &Tensor {
    type Output = Result<Tensor>;
    #[track_caller]
    fn neg(self) -> Result<Tensor> {
        Tensor::neg(self)
    }
}

impl Neg for Tensor {
    type Output = Result<Tensor>;
    #[track_caller]
    fn neg(self) -> Result<Tensor> {
        Tensor::neg(&self)
    }
}
