// micrograd's dialect on the Value type (dialect.hpp); the design is in
// docs/architecture.md, "micrograd's dialect".
#include "dialect.hpp"

#include "graph.hpp"
#include "value.hpp"

namespace ag {

static PyObject* str_op;        // "_op"
static PyObject* str_label;     // "label"
static PyObject* str_backward;  // "_backward"
static PyObject* str_empty;     // ""

// ------------------------------------------------------- the cycle collector

// Puts a wrapper under the cycle collector (once it can hold a cycle). The
// node's PY_TRACKED bit remembers it: asking Python costs a call per
// deallocation, a seventh of an op.
static void track(PyObject* self) {
  Node* n = reinterpret_cast<PyValue*>(self)->node;
  if (n->flags & PY_TRACKED) return;
  PyObject_GC_Track(self);
  n->flags |= PY_TRACKED;
}

void keep(PyObject* self) {
  Node* n = reinterpret_cast<PyValue*>(self)->node;
  track(self);
  if (n->flags & OWNS_PY) return;
  Py_INCREF(self);
  n->flags |= OWNS_PY;
}

// What the collector sees of a wrapper W of node N: its attributes, and the
// references nodes hold to their wrappers (OWNS_PY) where W alone
// stands for them, so that micrograd-style cycles (a closure in W's
// __dict__ refers to W) are collected:
//  - N's reference to W, when W is N's only holder (N.refs == 1);
//  - an input M's reference to its wrapper, when M's only holders are that
//    wrapper and N, and N is reached only through W (N.refs == 1) or through
//    W and one consumer that in turn stands for W (N owns W, N.refs == 2).
// Each such reference is reported by exactly one wrapper, and only along a
// path whose every node is held by that path alone, so the count stays exact:
// a chain of CUSTOM nodes goes in one collection. A CUSTOM node held by a
// node with no wrapper is reported by nobody and waits until that node goes.
int value_traverse(PyObject* self, visitproc visit, void* arg) {
  PyValue* v = reinterpret_cast<PyValue*>(self);
  Py_VISIT(v->dict);
  Node* n = v->node;
  bool only_through_self = n->refs == 1 || ((n->flags & OWNS_PY) && n->refs == 2);
  if (n->refs == 1 && (n->flags & OWNS_PY)) Py_VISIT(self);
  if (only_through_self) {
    int r = 0;
    for_each_input(n, [&](Node* m) {
      if (!r && (m->flags & OWNS_PY) && m->refs == 2) r = visit(m->py, arg);
    });
    if (r) return r;
  }
  return 0;
}

int value_clear(PyObject* self) {
  PyValue* v = reinterpret_cast<PyValue*>(self);
  Py_CLEAR(v->dict);
  Node* n = v->node;
  if (n->flags & OWNS_PY) {
    n->flags &= ~OWNS_PY;
    Py_DECREF(self);  // the collector holds a reference while it clears
  }
  return 0;
}

// The wrapper's attribute dict, made (and the wrapper tracked) on first use;
// a borrowed reference, or null with an error set.
static PyObject* attrs_of(PyObject* self) {
  PyValue* v = reinterpret_cast<PyValue*>(self);
  if (!v->dict) {
    v->dict = PyDict_New();
    if (!v->dict) return nullptr;
  }
  keep(self);
  return v->dict;
}

int value_setattro(PyObject* self, PyObject* name, PyObject* value) {
  int r = PyObject_GenericSetAttr(self, name, value);
  PyValue* v = reinterpret_cast<PyValue*>(self);
  // An attribute must outlive this wrapper's last Python reference: .inputs
  // hands the node out again. (A class assigned is not kept: keeping every
  // arenagrad.micrograd result would put the whole graph under the
  // collector, whose full passes then cost more than the step.)
  if (r == 0 && v->dict) keep(self);
  return r;
}

// --------------------------------------------------------------- attributes

// An attribute of the wrapper's dict (new reference), or null with no error
// when there is none.
static PyObject* own_attr(PyObject* self, PyObject* name) {
  PyObject* d = reinterpret_cast<PyValue*>(self)->dict;
  PyObject* r = d ? PyDict_GetItemWithError(d, name) : nullptr;
  Py_XINCREF(r);
  return r;
}

PyObject* given_op(PyObject* self) {
  PyObject* given = own_attr(self, str_op);
  if (given || PyErr_Occurred()) return given;
  Py_INCREF(str_empty);
  return str_empty;
}

static int set_own_attr(PyObject* self, PyObject* name, PyObject* v);

PyObject* get_given_op(PyObject* self, PyObject* otherwise) {
  PyObject* given = own_attr(self, str_op);
  if (given || PyErr_Occurred()) return given;
  Py_INCREF(otherwise);
  return otherwise;
}

int set_given_op(PyObject* self, PyObject* v, void*) {
  if (v && !PyUnicode_Check(v)) {
    PyErr_Format(PyExc_TypeError, "_op must be a str, not '%s'", Py_TYPE(v)->tp_name);
    return -1;
  }
  return set_own_attr(self, str_op, v);
}

PyObject* get_label(PyObject* self, void*) {
  PyObject* label = own_attr(self, str_label);
  if (label || PyErr_Occurred()) return label;
  Py_INCREF(str_empty);  // as micrograd's Value(x) has label ''
  return str_empty;
}

static int set_own_attr(PyObject* self, PyObject* name, PyObject* v) {
  PyObject* d = attrs_of(self);
  if (!d) return -1;
  if (v) return PyDict_SetItem(d, name, v);
  if (PyDict_DelItem(d, name) == 0) return 0;
  if (PyErr_ExceptionMatches(PyExc_KeyError)) {
    PyErr_Clear();
    PyErr_SetObject(PyExc_AttributeError, name);
  }
  return -1;
}
int set_label(PyObject* self, PyObject* v, void*) { return set_own_attr(self, str_label, v); }

bool give_op_and_label(PyObject* self, PyObject* op, PyObject* label) {
  return !(op && PyUnicode_GET_LENGTH(op) && set_own_attr(self, str_op, op) < 0) &&
         !(label && PyUnicode_GET_LENGTH(label) && set_own_attr(self, str_label, label) < 0);
}

// ---------------------------------------------------------------- _backward
// micrograd's per-node closure. On a node arenagrad built, v._backward() runs
// that node's local chain-rule step (the lecture steps through a graph by
// hand this way). On a node built as Value(data, children, op), assigning
// v._backward = f makes f that node's backward: backward() calls it at the
// node's place in the order, and what it adds to its children's .grad is
// part of the result.

static PyObject* local_step(PyObject* self, PyObject*) {
  Node* n = node_of(self);
  if (n->op == CUSTOM) {
    if (!python_step(n)) return nullptr;
  } else if (n->op != LEAF) {
    backward_step(n, false);
  }
  Py_RETURN_NONE;
}
static PyMethodDef local_step_def = {"_backward", local_step, METH_NOARGS,
                                     "Apply this node's local backward step to its inputs' .grad."};

PyObject* get_backward(PyObject* self, void*) {
  if (node_of(self)->op == CUSTOM) {
    PyObject* f = own_attr(self, str_backward);
    if (f || PyErr_Occurred()) return f;
  }
  return PyCFunction_New(&local_step_def, self);
}

int set_backward(PyObject* self, PyObject* v, void*) {
  if (node_of(self)->op != CUSTOM) {
    PyErr_SetString(PyExc_AttributeError,
                    "_backward can be set only on a Value built as Value(data, children, op); "
                    "a Value made by an arenagrad op has its backward already");
    return -1;
  }
  if (v && !PyCallable_Check(v)) {
    PyErr_Format(PyExc_TypeError, "_backward must be callable, not '%s'", Py_TYPE(v)->tp_name);
    return -1;
  }
  return set_own_attr(self, str_backward, v);
}

// backward's hook for CUSTOM nodes: call the closure, if one was assigned.
// The node owns its wrapper (OWNS_PY), so the closure is there to call.
static bool call_python_backward(Node* n) {
  if (!n->py) {  // cannot happen while OWNS_PY holds; refuse rather than crash
    PyErr_SetString(PyExc_RuntimeError, "a Value built with a Python _backward lost its wrapper");
    return false;
  }
  PyObject* f = own_attr(n->py, str_backward);
  if (!f) return !PyErr_Occurred();
  PyObject* r = PyObject_CallNoArgs(f);
  Py_DECREF(f);
  Py_XDECREF(r);
  return r != nullptr;
}

// A CUSTOM node over `children` (a tuple of Values): its value is data, its
// backward the Python closure later assigned to ._backward.
Node* custom_node(double data, PyObject* children, bool requires_grad) {
  Py_ssize_t k = PyTuple_GET_SIZE(children);
  uint8_t flags = 0;
  for (Py_ssize_t i = 0; i < k; ++i) {
    PyObject* c = PyTuple_GET_ITEM(children, i);
    if (!is_value(c)) {
      PyErr_Format(PyExc_TypeError, "Value(): _children[%zd] must be a Value, not '%s'", i, Py_TYPE(c)->tp_name);
      return nullptr;
    }
    flags |= node_of(c)->flags & REQUIRES_GRAD;
  }
  if (!requires_grad) flags = 0;
  Slot* s = pool::alloc_slots(static_cast<uint32_t>(k));
  Node* n = s ? new_node(data, CUSTOM, flags) : nullptr;
  if (!n) {
    if (s) pool::free_slots(s, static_cast<uint32_t>(k));
    else PyErr_NoMemory();
    return nullptr;
  }
  for (Py_ssize_t i = 0; i < k; ++i) {
    s[i].node = node_of(PyTuple_GET_ITEM(children, i));
    incref(s[i].node);
  }
  n->args = s;
  n->nin = static_cast<uint32_t>(k);
  return n;
}

bool init_dialect() {
  python_step = call_python_backward;
  str_op = PyUnicode_InternFromString("_op");
  str_label = PyUnicode_InternFromString("label");
  str_backward = PyUnicode_InternFromString("_backward");
  str_empty = PyUnicode_InternFromString("");
  return str_op && str_label && str_backward && str_empty;
}

}  // namespace ag
