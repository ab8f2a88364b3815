#include "nn/checkpoint_io/pickle.h"

#include <bit>
#include <cstring>
#include <map>
#include <unordered_map>
#include <unordered_set>

#include "nn/checkpoint_io/pickle_whitelist.h"
#include "tensor/error.h"

namespace gndet::nn::ckpt {
namespace {

using Kind = Value::Kind;

ValuePtr make(Kind k) {
  auto v = std::make_shared<Value>();
  v->kind = k;
  return v;
}
ValuePtr make_int(int64_t i) {
  auto v = make(Kind::Int);
  v->i = i;
  return v;
}
ValuePtr make_text(Kind k, std::string s) {
  auto v = make(k);
  v->s = std::move(s);
  return v;
}

void dict_set(Value& d, ValuePtr key, ValuePtr value) {
  if (key->is_text()) {
    auto [it, fresh] = d.index.emplace(key->s, d.dict.size());
    if (!fresh) {
      d.dict[it->second].second = std::move(value);
      return;
    }
  }
  d.dict.emplace_back(std::move(key), std::move(value));
}

class Machine {
 public:
  Machine(std::string_view bytes, size_t pos, const std::string& what, const UnpickleOptions& options)
      : b_(bytes), pos_(pos), what_(what), options_(options) {}

  ValuePtr run();
  size_t pos() const { return pos_; }
  // The containers that APPEND(S), ADDITEMS, SETITEM(S) or BUILD changed and that are still alive:
  // only such a change can close a cycle, so every cycle, reachable or already dropped from the
  // stack, passes through one of them.
  std::vector<ValuePtr> mutated_alive() const {
    std::vector<ValuePtr> out;
    for (const std::weak_ptr<Value>& w : mutated_) {
      if (ValuePtr v = w.lock()) out.push_back(std::move(v));
    }
    return out;
  }

 private:
  [[noreturn]] void fail(const std::string& why) const {
    GNDET_FAIL(what_, ": bad pickle at byte ", op_pos_, ": ", why);
  }
  void need(uint64_t n) const {
    if (n > b_.size() - pos_) fail("truncated (" + std::to_string(n) + " more bytes needed, " +
                                   std::to_string(b_.size() - pos_) + " left)");
  }
  uint64_t le(int n) {
    need(n);
    uint64_t v = 0;
    for (int k = 0; k < n; ++k) v |= static_cast<uint64_t>(static_cast<uint8_t>(b_[pos_ + k])) << (8 * k);
    pos_ += n;
    return v;
  }
  std::string take(uint64_t n) {
    need(n);
    std::string s(b_.substr(pos_, n));
    pos_ += n;
    return s;
  }
  std::string line() {
    const size_t end = b_.find('\n', pos_);
    if (end == std::string_view::npos) fail("unterminated text argument");
    std::string s(b_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return s;
  }
  ValuePtr pop() {
    if (stack_.size() <= mark_floor()) fail("stack underflow");
    ValuePtr v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }
  ValuePtr& top() {
    if (stack_.size() <= mark_floor()) fail("stack underflow");
    return stack_.back();
  }
  size_t mark_floor() const { return marks_.empty() ? 0 : marks_.back(); }
  std::vector<ValuePtr> pop_mark() {
    if (marks_.empty()) fail("no MARK on the stack");
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<ValuePtr> items(std::make_move_iterator(stack_.begin() + m), std::make_move_iterator(stack_.end()));
    stack_.resize(m);
    return items;
  }
  void push(ValuePtr v) { stack_.push_back(std::move(v)); }
  void memo_put(uint64_t idx) { memo_[idx] = top(); }
  void memo_get(uint64_t idx) {
    auto it = memo_.find(idx);
    if (it == memo_.end()) fail("memo key " + std::to_string(idx) + " was never stored");
    push(it->second);
  }
  ValuePtr tuple_of(std::vector<ValuePtr> items) {
    auto t = make(Kind::Tuple);
    t->items = std::move(items);
    return t;
  }
  void push_global(const std::string& module, const std::string& name);
  ValuePtr call(const ValuePtr& callable, const ValuePtr& args);
  void build(const ValuePtr& obj, const ValuePtr& state);
  ValuePtr rebuild_tensor(const std::vector<ValuePtr>& a);
  std::vector<int64_t> int_tuple(const ValuePtr& v, const char* what);
  void add_items(Value& target, std::vector<ValuePtr> items);

  std::string_view b_;
  size_t pos_;
  size_t op_pos_ = 0;
  const std::string& what_;
  const UnpickleOptions& options_;
  std::vector<ValuePtr> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, ValuePtr> memo_;
  std::vector<std::weak_ptr<Value>> mutated_;  // see mutated_alive()
};

void Machine::push_global(const std::string& module, const std::string& name) {
  const std::string q = normalize_module(module) + "." + name;
  if (!whitelist().count(q)) {
    GNDET_FAIL(what_, ": the pickle asks for the global '", q, "', which is not on gndet's whitelist of checkpoint "
               "types; refusing to load it (nothing was executed)");
  }
  push(make_text(Kind::Global, q));
}

std::vector<int64_t> Machine::int_tuple(const ValuePtr& v, const char* what) {
  if (v->kind != Kind::Tuple && v->kind != Kind::List) fail(std::string(what) + " is not a tuple");
  std::vector<int64_t> out;
  for (const ValuePtr& x : v->items) {
    if (x->kind != Kind::Int) fail(std::string(what) + " holds a " + x->kind_name() + ", not an integer");
    out.push_back(x->i);
  }
  return out;
}

ValuePtr Machine::rebuild_tensor(const std::vector<ValuePtr>& a) {
  if (a.size() < 4 || a[0]->kind != Kind::Storage || !a[0]->storage || a[1]->kind != Kind::Int) {
    fail("_rebuild_tensor expects (storage, offset, size, stride, ...)");
  }
  auto t = std::make_shared<TensorRef>();
  t->storage = a[0]->storage;
  t->offset = a[1]->i;
  t->sizes = int_tuple(a[2], "tensor size");
  t->strides = int_tuple(a[3], "tensor stride");
  if (t->sizes.size() != t->strides.size()) fail("tensor size and stride have different lengths");
  auto v = make(Kind::Tensor);
  v->tensor = std::move(t);
  return v;
}

ValuePtr Machine::call(const ValuePtr& callable, const ValuePtr& args) {
  if (callable->kind != Kind::Global) fail(std::string("REDUCE on a ") + callable->kind_name() + ", not a global");
  if (args->kind != Kind::Tuple) fail("REDUCE arguments are not a tuple");
  const std::vector<ValuePtr>& a = args->items;
  const std::string& q = callable->s;
  const auto meaning = whitelist().find(q);
  if (meaning == whitelist().end()) fail("'" + q + "' is not callable");
  switch (meaning->second) {
    case Meaning::RebuildTensor: return rebuild_tensor(a);
    case Meaning::RebuildParameter:
      if (a.empty() || a[0]->kind != Kind::Tensor) fail(q + " expects a tensor");
      return a[0];
    case Meaning::MakeDict: {
      auto d = make(Kind::Dict);
      // OrderedDict([(k, v), ...]) carries its items; defaultdict(factory) names a factory.
      if (q == "collections.OrderedDict" && !a.empty() && a[0]->kind == Kind::List) {
        for (const ValuePtr& kv : a[0]->items) {
          if (kv->kind != Kind::Tuple || kv->items.size() != 2) fail("OrderedDict items are not pairs");
          dict_set(*d, kv->items[0], kv->items[1]);
        }
      }
      return d;
    }
    case Meaning::MakeSet: {
      auto s = make(Kind::Set);
      if (!a.empty() && (a[0]->kind == Kind::List || a[0]->kind == Kind::Tuple)) s->items = a[0]->items;
      return s;
    }
    case Meaning::NumpyReconstruct: {
      if (a.empty() || a[0]->kind != Kind::Global || a[0]->s != "numpy.ndarray") fail(q + " of something not an ndarray");
      auto v = make(Kind::Array);
      v->array = std::make_shared<ArrayRef>();
      return v;
    }
    case Meaning::NumpyDtype: {
      if (a.empty() || !a[0]->is_text()) fail("numpy.dtype without a type string");
      auto v = make(Kind::Dtype);
      v->array = std::make_shared<ArrayRef>();
      // An unknown type (strings, objects: metadata) is only an error when its data is used.
      if (!elem_of_numpy_descr(a[0]->s, &v->array->elem, &v->array->big_endian)) {
        v->array->unsupported = "numpy dtype '" + a[0]->s + "'";
      }
      return v;
    }
    case Meaning::NumpyFromBuffer: {
      if (a.size() != 4 || !a[0]->is_text() || a[1]->kind != Kind::Dtype || !a[3]->is_text()) {
        fail(q + " expects (buffer, dtype, shape, order)");
      }
      auto arr = std::make_shared<ArrayRef>(*a[1]->array);
      arr->shape = int_tuple(a[2], "ndarray shape");
      arr->fortran = a[3]->s == "F";
      arr->bytes = a[0]->s;
      arr->built = true;
      auto v = make(Kind::Array);
      v->array = std::move(arr);
      return v;
    }
    case Meaning::NumpyScalar: {
      if (a.size() != 2 || a[0]->kind != Kind::Dtype || !a[1]->is_text()) fail(q + " expects (dtype, bytes)");
      const ArrayRef& d = *a[0]->array;
      if (d.unsupported.empty() && a[1]->s.size() != elem_size(d.elem)) fail("numpy scalar of the wrong byte length");
      auto arr = std::make_shared<ArrayRef>(d);
      arr->built = true;
      arr->bytes = a[1]->s;
      auto v = make(Kind::Array);  // a 0-d array
      v->array = std::move(arr);
      return v;
    }
    case Meaning::CodecsEncode: {
      if (a.size() != 2 || a[0]->kind != Kind::Str || !a[1]->is_text() || (a[1]->s != "latin1" && a[1]->s != "latin-1")) {
        fail("_codecs.encode is only read as encode(text, 'latin1')");
      }
      // UTF-8 text -> one byte per code point (each must be < 256).
      std::string out;
      const std::string& s = a[0]->s;
      for (size_t k = 0; k < s.size();) {
        const auto c = static_cast<uint8_t>(s[k]);
        if (c < 0x80) {
          out.push_back(static_cast<char>(c));
          k += 1;
        } else if ((c & 0xE0) == 0xC0 && k + 1 < s.size() && c <= 0xC3) {
          out.push_back(static_cast<char>(((c & 0x1F) << 6) | (static_cast<uint8_t>(s[k + 1]) & 0x3F)));
          k += 2;
        } else {
          fail("_codecs.encode: text is not latin-1");
        }
      }
      return make_text(Kind::Bytes, std::move(out));
    }
    case Meaning::Reconstructor: {
      if (a.empty() || a[0]->kind != Kind::Global) fail("copyreg._reconstructor without a class");
      if (whitelist().at(a[0]->s) != Meaning::InertClass) fail("copyreg._reconstructor of '" + a[0]->s + "'");
      auto o = make_text(Kind::Object, a[0]->s);
      return o;
    }
    case Meaning::StrSubclass:
      if (a.size() != 1 || a[0]->kind != Kind::Str) fail(q + " expects one string");
      return make_text(Kind::Str, a[0]->s);
    case Meaning::GetAttr: {
      // Only on an inert class, whose attributes are never looked up or run: getattr(os, 'system')
      // and the like are refused.
      if (a.size() != 2 || a[0]->kind != Kind::Global || !a[1]->is_text() ||
          whitelist().at(a[0]->s) != Meaning::InertClass) {
        fail("builtins.getattr is only read on the inert classes of the whitelist");
      }
      return make_text(Kind::Object, a[0]->s + "." + a[1]->s);
    }
    case Meaning::InertClass: {
      auto o = make_text(Kind::Object, q);
      o->items = a;
      return o;
    }
    case Meaning::StorageType:
    case Meaning::Tag: break;
  }
  fail("'" + q + "' is read as data only and is never called");
}

void Machine::build(const ValuePtr& obj, const ValuePtr& state) {
  switch (obj->kind) {
    case Kind::Array: {
      // ndarray.__setstate__((version, shape, dtype, is_fortran, rawdata))
      ArrayRef& arr = *obj->array;
      const std::vector<ValuePtr>* s = state->kind == Kind::Tuple ? &state->items : nullptr;
      if (s == nullptr || s->size() < 4 || arr.built) fail("bad ndarray state");
      const size_t o = s->size() == 5 ? 1 : 0;  // older numpy leaves out the version field
      arr.shape = int_tuple((*s)[o], "ndarray shape");
      const ValuePtr& dt = (*s)[o + 1];
      if (dt->kind != Kind::Dtype) fail("ndarray state without a dtype");
      arr.elem = dt->array->elem;
      arr.big_endian = dt->array->big_endian;
      arr.unsupported = dt->array->unsupported;
      arr.fortran = (*s)[o + 2]->kind == Kind::Bool ? (*s)[o + 2]->b : (*s)[o + 2]->i != 0;
      if ((*s)[o + 3]->is_text()) {
        arr.bytes = (*s)[o + 3]->s;
      } else if (arr.unsupported.empty()) {
        arr.unsupported = "an object array";  // its data is a list of Python objects
      }
      arr.built = true;
      return;
    }
    case Kind::Dtype: {
      // dtype.__setstate__((version, byteorder, ...)): '>' marks big-endian data.
      if (state->kind == Kind::Tuple && state->items.size() >= 2 && state->items[1]->is_text()) {
        const std::string& order = state->items[1]->s;
        if (order == ">") obj->array->big_endian = true;
        if (order == "<") obj->array->big_endian = false;
      }
      return;
    }
    case Kind::Object: obj->state = state; return;
    case Kind::Tensor:  // torch only adds Python attributes this way
    case Kind::Dict:    // an OrderedDict's attributes (state_dict's _metadata), not its items
      return;
    default: fail(std::string("BUILD on a ") + obj->kind_name());
  }
}

void Machine::add_items(Value& target, std::vector<ValuePtr> items) {
  if (target.kind == Kind::List || target.kind == Kind::Set) {
    for (ValuePtr& x : items) target.items.push_back(std::move(x));
    return;
  }
  fail(std::string("APPEND to a ") + target.kind_name());
}

ValuePtr Machine::run() {
  for (;;) {
    op_pos_ = pos_;
    need(1);
    const auto op = static_cast<uint8_t>(b_[pos_++]);
    switch (op) {
      case 0x80: {  // PROTO
        const uint64_t proto = le(1);
        if (proto > 5) fail("pickle protocol " + std::to_string(proto) + " is newer than 5");
        break;
      }
      case 0x95: le(8); break;  // FRAME: a length hint only
      case '.': {                // STOP
        if (stack_.size() != 1 || !marks_.empty()) fail("STOP with " + std::to_string(stack_.size()) + " values on the stack");
        return stack_.back();
      }
      case '(': marks_.push_back(stack_.size()); break;  // MARK
      case '0': pop(); break;                            // POP
      case '1': pop_mark(); break;                       // POP_MARK
      case '2': push(top()); break;                      // DUP
      case 'N': push(make(Kind::None)); break;
      case 0x88:
      case 0x89: {  // NEWTRUE, NEWFALSE
        auto v = make(Kind::Bool);
        v->b = op == 0x88;
        push(v);
        break;
      }
      case 'J': push(make_int(static_cast<int32_t>(le(4)))); break;  // BININT
      case 'K': push(make_int(static_cast<int64_t>(le(1)))); break;  // BININT1
      case 'M': push(make_int(static_cast<int64_t>(le(2)))); break;  // BININT2
      case 'I': {  // INT (protocol 0 text; "I01\n" is True)
        const std::string t = line();
        if (t == "01" || t == "00") {
          auto v = make(Kind::Bool);
          v->b = t == "01";
          push(v);
        } else {
          try {
            size_t used = 0;
            const long long x = std::stoll(t, &used);
            if (used != t.size()) fail("bad INT '" + t + "'");
            push(make_int(x));
          } catch (const std::logic_error&) {
            fail("bad INT '" + t + "'");
          }
        }
        break;
      }
      case 0x8a:
      case 0x8b: {  // LONG1, LONG4: little-endian two's complement
        const uint64_t n = le(op == 0x8a ? 1 : 4);
        std::string raw = take(n);
        if (n <= 8) {
          uint64_t x = 0;
          for (size_t k = 0; k < n; ++k) x |= static_cast<uint64_t>(static_cast<uint8_t>(raw[k])) << (8 * k);
          if (n > 0 && n < 8 && (static_cast<uint8_t>(raw[n - 1]) & 0x80)) x |= ~uint64_t{0} << (8 * n);
          push(make_int(static_cast<int64_t>(x)));
        } else {
          push(make_text(Kind::BigInt, std::move(raw)));
        }
        break;
      }
      case 'G': {  // BINFLOAT: big-endian double
        need(8);
        uint64_t x = 0;
        for (int k = 0; k < 8; ++k) x = (x << 8) | static_cast<uint8_t>(b_[pos_ + k]);
        pos_ += 8;
        auto v = make(Kind::Float);
        v->f = std::bit_cast<double>(x);
        push(v);
        break;
      }
      case 'X': push(make_text(Kind::Str, take(le(4)))); break;     // BINUNICODE
      case 0x8c: push(make_text(Kind::Str, take(le(1)))); break;    // SHORT_BINUNICODE
      case 0x8d: push(make_text(Kind::Str, take(le(8)))); break;    // BINUNICODE8
      case 'T': push(make_text(Kind::Bytes, take(le(4)))); break;   // BINSTRING (Python 2 str)
      case 'U': push(make_text(Kind::Bytes, take(le(1)))); break;   // SHORT_BINSTRING
      case 'B': push(make_text(Kind::Bytes, take(le(4)))); break;   // BINBYTES
      case 'C': push(make_text(Kind::Bytes, take(le(1)))); break;   // SHORT_BINBYTES
      case 0x8e: push(make_text(Kind::Bytes, take(le(8)))); break;  // BINBYTES8
      case 0x96: push(make_text(Kind::Bytes, take(le(8)))); break;  // BYTEARRAY8
      case ']': push(make(Kind::List)); break;                      // EMPTY_LIST
      case ')': push(make(Kind::Tuple)); break;                     // EMPTY_TUPLE
      case '}': push(make(Kind::Dict)); break;                      // EMPTY_DICT
      case 0x8f: push(make(Kind::Set)); break;                      // EMPTY_SET
      case 'l': {                                                   // LIST
        auto v = make(Kind::List);
        v->items = pop_mark();
        push(v);
        break;
      }
      case 't': push(tuple_of(pop_mark())); break;  // TUPLE
      case 0x91: {                                   // FROZENSET
        auto v = make(Kind::Set);
        v->items = pop_mark();
        push(v);
        break;
      }
      case 0x85:
      case 0x86:
      case 0x87: {  // TUPLE1..3
        const size_t n = op - 0x84;
        std::vector<ValuePtr> items(n);
        for (size_t k = n; k-- > 0;) items[k] = pop();
        push(tuple_of(std::move(items)));
        break;
      }
      case 'a': {  // APPEND
        ValuePtr x = pop();
        mutated_.push_back(top());
        add_items(*top(), {x});
        break;
      }
      case 'e':     // APPENDS
      case 0x90: {  // ADDITEMS
        std::vector<ValuePtr> items = pop_mark();
        mutated_.push_back(top());
        add_items(*top(), std::move(items));
        break;
      }
      case 'd': {  // DICT
        std::vector<ValuePtr> items = pop_mark();
        if (items.size() % 2) fail("DICT with an odd number of items");
        auto d = make(Kind::Dict);
        for (size_t k = 0; k < items.size(); k += 2) dict_set(*d, items[k], items[k + 1]);
        push(d);
        break;
      }
      case 's': {  // SETITEM
        ValuePtr v = pop(), k = pop();
        if (top()->kind != Kind::Dict) fail(std::string("SETITEM on a ") + top()->kind_name());
        mutated_.push_back(top());
        dict_set(*top(), k, v);
        break;
      }
      case 'u': {  // SETITEMS
        std::vector<ValuePtr> items = pop_mark();
        if (items.size() % 2) fail("SETITEMS with an odd number of items");
        if (top()->kind != Kind::Dict) fail(std::string("SETITEMS on a ") + top()->kind_name());
        mutated_.push_back(top());
        for (size_t k = 0; k < items.size(); k += 2) dict_set(*top(), items[k], items[k + 1]);
        break;
      }
      case 'c': {  // GLOBAL "module\nname\n"
        const std::string module = line();
        const std::string name = line();
        push_global(module, name);
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        ValuePtr name = pop(), module = pop();
        if (!name->is_text() || !module->is_text()) fail("STACK_GLOBAL needs two strings");
        push_global(module->s, name->s);
        break;
      }
      case 'R': {  // REDUCE
        ValuePtr args = pop(), callable = pop();
        push(call(callable, args));
        break;
      }
      case 0x81: {  // NEWOBJ: cls.__new__(cls, *args)
        ValuePtr args = pop(), cls = pop();
        push(call(cls, args));
        break;
      }
      case 0x92: {  // NEWOBJ_EX
        pop();  // kwargs
        ValuePtr args = pop(), cls = pop();
        push(call(cls, args));
        break;
      }
      case 'b': {  // BUILD
        ValuePtr state = pop();
        mutated_.push_back(top());
        build(top(), state);
        break;
      }
      case 'Q': {  // BINPERSID
        ValuePtr pid = pop();
        if (!options_.persistent_load) fail("persistent id in a pickle that has no storages");
        push(options_.persistent_load(pid));
        break;
      }
      case 'q': memo_put(le(1)); break;                    // BINPUT
      case 'r': memo_put(le(4)); break;                    // LONG_BINPUT
      case 0x94: memo_put(memo_.size()); break;            // MEMOIZE
      case 'h': memo_get(le(1)); break;                    // BINGET
      case 'j': memo_get(le(4)); break;                    // LONG_BINGET
      case 'p':                                             // PUT (text)
      case 'g': {                                           // GET (text)
        const std::string t = line();
        uint64_t idx = 0;
        if (t.empty() || t.size() > 18 || t.find_first_not_of("0123456789") != std::string::npos) fail("bad memo key");
        idx = std::stoull(t);
        op == 'p' ? memo_put(idx) : memo_get(idx);
        break;
      }
      default: {
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02x", op);
        fail(std::string("unknown or unsupported pickle opcode ") + hex);
      }
    }
  }
}

}  // namespace

namespace {

template <class F>
void for_each_child(const Value& v, F&& f) {
  for (const ValuePtr& c : v.items) f(c);
  for (const auto& [k, x] : v.dict) {
    f(k);
    f(x);
  }
  if (v.state) f(v.state);
}

// Every value reachable from `roots`, each once, found without recursion.
std::vector<ValuePtr> reachable(const std::vector<ValuePtr>& roots) {
  std::unordered_set<const Value*> seen;
  std::vector<ValuePtr> out, pending;
  for (const ValuePtr& r : roots) {
    if (r) pending.push_back(r);
  }
  while (!pending.empty()) {
    ValuePtr v = std::move(pending.back());
    pending.pop_back();
    if (!seen.insert(v.get()).second) continue;
    for_each_child(*v, [&](const ValuePtr& c) {
      if (c && !seen.count(c.get())) pending.push_back(c);
    });
    out.push_back(std::move(v));
  }
  return out;
}

// True when some value of `all` (closed under children) contains itself: depth-first search with
// colours, on an explicit stack.
bool has_cycle(const std::vector<ValuePtr>& all) {
  enum Colour { kWhite, kGrey, kBlack };
  std::unordered_map<const Value*, Colour> colour;
  for (const ValuePtr& v : all) colour[v.get()] = kWhite;
  for (const ValuePtr& start : all) {
    if (colour[start.get()] != kWhite) continue;
    std::vector<std::pair<const Value*, std::vector<const Value*>>> path;  // node, children left
    auto enter = [&](const Value* v) {
      colour[v] = kGrey;
      std::vector<const Value*> kids;
      for_each_child(*v, [&](const ValuePtr& c) {
        if (c) kids.push_back(c.get());
      });
      path.emplace_back(v, std::move(kids));
    };
    enter(start.get());
    while (!path.empty()) {
      auto& [node, kids] = path.back();
      if (kids.empty()) {
        colour[node] = kBlack;
        path.pop_back();
        continue;
      }
      const Value* next = kids.back();
      kids.pop_back();
      if (colour[next] == kGrey) return true;
      if (colour[next] == kWhite) enter(next);
    }
  }
  return false;
}

// Unlinks the given values from their children, which breaks every cycle through them. Children
// freed by this are released by ~Value, iteratively.
void unlink_all(std::vector<ValuePtr> values) {
  std::vector<ValuePtr> children;  // kept alive until every value is unlinked
  for (const ValuePtr& v : values) {
    for_each_child(*v, [&](const ValuePtr& c) { children.push_back(c); });
    v->items.clear();
    v->dict.clear();
    v->index.clear();
    v->state.reset();
  }
}

}  // namespace

ValuePtr unpickle(std::string_view bytes, size_t* pos, const std::string& what, const UnpickleOptions& options) {
  GNDET_CHECK(*pos <= bytes.size(), what, ": pickle offset past the end");
  Machine m(bytes, *pos, what, options);
  ValuePtr v;
  try {
    v = m.run();
  } catch (...) {
    unlink_all(m.mutated_alive());  // a failed pickle may have built cycles, held or dropped
    throw;
  }
  // A value that contains itself (a list appended to itself through the memo) would leak as a
  // shared_ptr cycle; no checkpoint needs one, so it is refused (found by LeakSanitizer in the
  // checkpoint fuzz target).
  std::vector<ValuePtr> roots = m.mutated_alive();
  roots.push_back(v);
  if (has_cycle(reachable(roots))) {
    v.reset();
    roots.pop_back();
    unlink_all(std::move(roots));
    GNDET_FAIL(what, ": the pickle builds a value that contains itself (a cycle); no checkpoint needs one");
  }
  *pos = m.pos();
  return v;
}

}  // namespace gndet::nn::ckpt
