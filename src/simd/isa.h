// The instruction set a translation unit is compiled for, as a namespace tag.
//
// src/cpu/kernels.cpp is compiled once per ISA (see CMakeLists.txt) with
// NNFAST_ISA set to sse2, avx2 or avx512 and matching -m flags. Everything
// inline or templated that such a unit instantiates (the ops/ formulas, the
// vector types) lives in an inline namespace named after the ISA, so the linker
// can never merge an AVX-512 instantiation into the code path of an older CPU.
#pragma once

#ifndef NNFAST_ISA
#define NNFAST_ISA generic
#endif

#define NNFAST_ISA_NAMESPACE_BEGIN inline namespace NNFAST_ISA {
#define NNFAST_ISA_NAMESPACE_END }
