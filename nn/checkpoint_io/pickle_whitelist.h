// The globals gndet's pickle reader knows, and what each one means (pickle.cpp builds the value the
// real function would have returned from its arguments; nothing is imported or called).
#pragma once

#include <map>
#include <string>

#include "nn/checkpoint_io/pickle.h"

namespace gndet::nn::ckpt {

// What a whitelisted global means. Nothing here imports or calls anything: the reader builds the
// value that the real function would have returned, from its arguments, or refuses.
enum class Meaning {
  RebuildTensor,     // torch._utils._rebuild_tensor(_v2)(storage, offset, size, stride, ...)
  RebuildParameter,  // torch._utils._rebuild_parameter(data, requires_grad, hooks) -> data
  MakeDict,          // collections.OrderedDict / defaultdict / builtins.dict: an (ordered) dict
  MakeSet,           // builtins.set / frozenset
  StorageType,       // torch.FloatStorage ...: only a tag inside persistent ids, never called
  NumpyReconstruct,  // numpy.core.multiarray._reconstruct(ndarray, (0,), b'b') + BUILD(state)
  NumpyFromBuffer,   // numpy.core.numeric._frombuffer(bytes, dtype, shape, order): protocol 5 arrays
  NumpyScalar,       // numpy.core.multiarray.scalar(dtype, bytes): one number
  NumpyDtype,        // numpy.dtype('f4', False, True) + BUILD(state)
  Tag,               // a class named as data only (numpy.ndarray, builtins.object), never called
  CodecsEncode,      // _codecs.encode(text, 'latin1'): how Python 3 pickles bytes at protocol 2
  Reconstructor,     // copyreg._reconstructor(cls, object, None) + BUILD: an inert object
  InertClass,        // a plain data class whose instance is kept as (class name, state), never run
  StrSubclass,       // torch.torch_version.TorchVersion('2.1.2'): a str subclass in meta, read as the str
  GetAttr,           // builtins.getattr(inert class, name): a method named as data (HistoryBuffer's
                     // statistics table); gives an inert reference that cannot be called
};

// "module.name" -> meaning; anything not here is refused by name.
const std::map<std::string, Meaning>& whitelist();

// Python 2 module names, as Python 3's unpickler maps them (fix_imports).
std::string normalize_module(const std::string& module);

// numpy type string ('<f4', 'f8', '|b1', ...) -> element type; false when gndet cannot read it.
bool elem_of_numpy_descr(const std::string& descr, Elem* elem, bool* big_endian);

}  // namespace gndet::nn::ckpt
